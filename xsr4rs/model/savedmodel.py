"""Read a SavedModel's protobuf without running it: signatures, and operations to refuse.

A SavedModel is a program: its graph can read or write files, reach the network through
file-system URLs, or call back into Python. TensorFlow's security guidance is to treat
an untrusted model as untrusted code. xsr4rs reads ``saved_model.pb`` (a protobuf, never
executed) and lists the operations that would run when the model is loaded or called:
everything reachable from its signatures, its init ops, the functions its object graph
defines and, for TF1 models, the restore subgraph the loader runs (where only the
checkpoint-restoring ops are allowed). The save subgraph, which nothing runs, is
skipped. An operation that touches the file system, the network or Python, or that this
TensorFlow does not know (a custom op library), is refused unless the model is trusted:
``trust_model=True``, ``--trust-model`` or ``XSR4RS_TRUST_MODELS=1``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xsr4rs.exceptions import ModelError, UntrustedModelError

#: Environment variable that trusts every model (for cluster jobs of vetted models).
TRUST_ENV = "XSR4RS_TRUST_MODELS"

#: Operations refused by name: files, checkpoints, summaries, readers, the datasets that
#: read or write files or reach tf.data services, Python callbacks (a GeneratorDataset's
#: functions call PyFunc), debuggers, collectives.
_REFUSED = re.compile(
    r"^(ReadFile|WriteFile|MatchingFiles|ImmutableConst|FileSystemSetConfiguration"
    r"|Save|SaveV2|SaveSlices|Restore|RestoreV2|RestoreSlice|MergeV2Checkpoints"
    r"|LoadAndRemapMatrix|GenerateVocabRemapping|InitializeTableFromTextFile(V2)?"
    r"|PyFunc|PyFuncStateless|EagerPyFunc"
    r"|.*Reader(V2)?|Reader.*|.*Summary.*|.*TFRecord.*|.*DataService.*|RegisterDataset.*"
    r"|.*(TextLine|FixedLengthRecord|CSV|Sql|LMDB|Snapshot|Save|Load|Cache).*Dataset.*"
    r"|Debug.*|Copy|CopyHost|.*Rpc.*|Gcs.*|Collective.*|Nccl.*|_Send|_Recv|_HostSend|_HostRecv"
    r"|RegisterDataset|EncodeProto|DecodeProto(V2)?)$"
)
#: What the loader of a TF1 SavedModel may run to restore its variables.
_RESTORE_OPS = {"Restore", "RestoreV2", "RestoreSlice"}
_TF1_INIT_COLLECTIONS = ("saved_model_main_op", "legacy_init_op", "init_op", "table_initializer")


@dataclass
class Signature:
    """Inputs and outputs of one signature: ``{key: (tensor name, dtype, shape)}``."""

    inputs: dict[str, tuple[str, str, tuple[int, ...] | None]]
    outputs: dict[str, tuple[str, str, tuple[int, ...] | None]]


@dataclass
class Inspection:
    """What ``saved_model.pb`` says, read without running anything."""

    signatures: dict[str, Signature]
    refused: list[tuple[str, str]] = field(default_factory=list)  # (op, where)
    tf1: bool = False

    def describe_refused(self, limit: int = 6) -> str:
        seen: dict[str, str] = {}
        for op, where in self.refused:
            seen.setdefault(op, where)
        items = [f"{op} (in {where})" for op, where in list(seen.items())[:limit]]
        more = f" and {len(seen) - limit} more" if len(seen) > limit else ""
        return ", ".join(items) + more


_CACHE: dict[tuple[str, tuple[int, int]], Inspection] = {}


def trusted_by_environment() -> bool:
    return os.environ.get(TRUST_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def inspect_saved_model(path: str | os.PathLike[str], stamp: Any = None) -> Inspection:
    """Signatures and refused operations of the SavedModel at ``path`` (cached per stamp)."""
    key = (os.fspath(path), stamp)
    if stamp is not None and key in _CACHE:
        return _CACHE[key]
    from xsr4rs._tf import import_tf

    import_tf()  # quietly, before TensorFlow's protobuf modules
    from tensorflow.core.protobuf import saved_model_pb2

    pb = Path(path) / "saved_model.pb"
    proto = saved_model_pb2.SavedModel()
    try:
        if pb.is_file():
            proto.ParseFromString(pb.read_bytes())
        else:
            from google.protobuf import text_format

            text_format.Parse((Path(path) / "saved_model.pbtxt").read_text(), proto)
    except Exception as err:
        raise ModelError(f"cannot load the SavedModel {path}: {err}") from None
    metas = [m for m in proto.meta_graphs if "serve" in m.meta_info_def.tags]
    if not metas:
        raise ModelError(
            f"the SavedModel {path} has no graph tagged 'serve': export it for serving"
        )
    result = _inspect_meta_graph(metas[0])
    if stamp is not None:
        _CACHE[key] = result
    return result


def _shape(proto: Any) -> tuple[int, ...] | None:
    if proto.unknown_rank:
        return None
    return tuple(int(d.size) for d in proto.dim)


def _inspect_meta_graph(meta: Any) -> Inspection:
    from tensorflow.python.framework import dtypes, op_def_registry

    graph = meta.graph_def
    nodes = {n.name: n for n in graph.node}
    functions = {f.signature.name: f for f in graph.library.function}

    def spec(t: Any) -> tuple[str, str, tuple[int, ...] | None]:
        try:
            dtype = dtypes.as_dtype(t.dtype).name
        except TypeError:  # DT_INVALID, e.g. the output of an init op
            dtype = "none"
        return t.name, dtype, _shape(t.tensor_shape)

    signatures = {
        name: Signature(
            inputs={k: spec(t) for k, t in sig.inputs.items()},
            outputs={k: spec(t) for k, t in sig.outputs.items()},
        )
        for name, sig in meta.signature_def.items()
    }
    tf1 = not meta.object_graph_def.nodes
    walker = _Walker(nodes, functions, op_def_registry)
    for name, sig in meta.signature_def.items():
        for t in [*sig.outputs.values(), *sig.inputs.values()]:
            walker.node(t.name, f"signature {name}")
    for key in _TF1_INIT_COLLECTIONS:
        if key in meta.collection_def:
            for node_name in meta.collection_def[key].node_list.value:
                walker.node(node_name, key)
    for fname in meta.object_graph_def.concrete_functions:
        walker.function(fname, f"function {fname}")
    if tf1 and meta.saver_def.restore_op_name:
        walker.node(meta.saver_def.restore_op_name, "variable restore", allow=_RESTORE_OPS)
    return Inspection(signatures=signatures, refused=walker.refused, tf1=tf1)


class _Walker:
    """Collects refused operations reachable from nodes and functions."""

    def __init__(self, nodes: dict, functions: dict, registry: Any) -> None:
        self.nodes, self.functions, self.registry = nodes, functions, registry
        self.seen_nodes: set[tuple[str, frozenset]] = set()
        self.seen_functions: set[tuple[str, frozenset]] = set()
        self.refused: list[tuple[str, str]] = []

    def node(self, tensor: str, where: str, allow: Iterable[str] = ()) -> None:
        allow = frozenset(allow)
        stack = [tensor]
        while stack:
            name = stack.pop().lstrip("^").split(":")[0]
            if (name, allow) in self.seen_nodes or name not in self.nodes:
                continue
            self.seen_nodes.add((name, allow))
            node = self.nodes[name]
            self.check(node, where, allow)
            stack.extend(node.input)

    def function(self, name: str, where: str, allow: frozenset = frozenset()) -> None:
        if (name, allow) in self.seen_functions or name not in self.functions:
            return
        self.seen_functions.add((name, allow))
        for node in self.functions[name].node_def:
            self.check(node, name, allow)

    def check(self, node: Any, where: str, allow: frozenset) -> None:
        op = node.op
        for fname in _called_functions(node):
            self.function(fname, where, allow)
        if op in self.functions:
            self.function(op, where, allow)
            return
        if op in allow:
            return
        if _REFUSED.match(op) or _prints_to_file(node):
            self.refused.append((op, where))
        elif self.registry.get(op) is None:
            self.refused.append((f"{op} (unknown to this TensorFlow)", where))


def _called_functions(node: Any) -> list[str]:
    out = []
    for value in node.attr.values():
        if value.HasField("func"):
            out.append(value.func.name)
        if value.HasField("list"):
            out.extend(f.name for f in value.list.func)
    return out


def _prints_to_file(node: Any) -> bool:
    if node.op != "PrintV2":
        return False
    if "output_stream" not in node.attr:
        return False
    return node.attr["output_stream"].s.decode(errors="replace").startswith("file://")


def check_trusted(path: str, stamp: Any, *, trust: bool) -> Inspection | None:
    """Raise `UntrustedModelError` when ``path`` runs refused operations and is not trusted.

    Returns the inspection (``None`` when trusted: nothing is read then).
    """
    if trust or trusted_by_environment():
        return None
    report = inspect_saved_model(path, stamp)
    if report.refused:
        raise UntrustedModelError(
            f"the SavedModel {path} runs operations that reach outside the computation: "
            f"{report.describe_refused()}. A SavedModel is a program: pass "
            f"trust_model=True (CLI --trust-model, or {TRUST_ENV}=1) only if you trust "
            "its author"
        )
    return report


def serving_signature(report: Inspection) -> tuple[str, Signature]:
    """The signature xsr4rs calls: ``serving_default``, else the first one of the model."""
    sigs = {k: v for k, v in report.signatures.items() if not k.startswith("__")}
    if "serving_default" in sigs:
        return "serving_default", sigs["serving_default"]
    if not sigs:
        raise ModelError("the SavedModel has no serving signature")
    name = next(iter(sigs))
    return name, sigs[name]


def describe_model(model: str | os.PathLike[str]) -> dict[str, Any]:
    """What a model's files say, read without running it: path, serving signature
    (inputs and outputs with dtype and shape) and refused operations."""
    from xsr4rs.model.builtin import builtin_path, is_builtin

    name = os.fspath(model)
    path = os.path.abspath(builtin_path(name) if is_builtin(name) else name)
    report = inspect_saved_model(path)
    sig_name, sig = serving_signature(report)

    def specs(items: dict) -> dict[str, dict[str, Any]]:
        return {
            k: {"tensor": t, "dtype": d, "shape": None if s is None else list(s)}
            for k, (t, d, s) in items.items()
        }

    return {
        "path": path,
        "signature": {"name": sig_name, "inputs": specs(sig.inputs), "outputs": specs(sig.outputs)},
        "refused_ops": [f"{op} (in {where})" for op, where in report.refused],
        "tf1": report.tf1,
    }
