import sys

from xsr4rs.cli import main

sys.exit(main())
