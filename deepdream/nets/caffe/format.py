"""The Caffe model format: read deploy prototxts and caffemodels (current and V1), match weights.

The result is a plain list of ``LayerSpec``: every layer in run order with its bottoms, tops,
parameters (a ``LayerParameter`` message) and weight blobs as numpy arrays. What a layer *does*
is the engine's business; this module only knows the file formats.
"""
from __future__ import annotations

import dataclasses
import difflib
import logging
import re
import typing
from pathlib import Path

import numpy as np
from google.protobuf import message as _pb_message
from google.protobuf import text_format

from ...errors import ModelError, ModelMismatchError
from . import caffe_pb2 as pb

log = logging.getLogger(__name__)

# Layer types whose learned parameters must come from the caffemodel (Caffe would silently fill
# them with random numbers from the deploy's fillers; we refuse instead).
TYPES_WITH_WEIGHTS = {"Convolution", "InnerProduct", "BatchNorm", "Scale"}
# Layers of train nets that read data from disk; a net rebuilt from a caffemodel gets an Input
# layer in their place.
DATA_TYPES = {"Data", "ImageData", "MemoryData", "HDF5Data", "DummyData", "WindowData",
              "Python", "AnnotatedData"}
# The legacy enum names of V1 nets, upgraded to the type strings of the current format
# (Caffe's UpgradeV1LayerType).
V1_TYPE_NAMES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DATA": "Data", "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice",
    "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}
# Parameter fields that V1LayerParameter and LayerParameter share by name (and message type).
_V1_PARAM_FIELDS = ("accuracy_param", "concat_param", "convolution_param", "data_param",
                    "dropout_param", "eltwise_param", "image_data_param",
                    "inner_product_param", "lrn_param", "memory_data_param", "pooling_param",
                    "relu_param", "softmax_param", "transform_param", "loss_param")
_SPLIT_NAME = re.compile(r".+_\d+_split_\d+")
# The parameters in Caffe 1.0's caffe.proto of layer types that we never run (data sources,
# losses, layers without a PyTorch counterpart here): our caffe.proto leaves them out, so a
# prototxt's blocks of them are passed over, as are a layer's *_param blocks that are no near
# miss of a field we know (the layer types of Caffe's forks: permute_param, prior_box_param;
# such a layer is then refused by its type, or dropped as a data layer). Any other field our
# proto lacks is refused, as Caffe refuses a field it does not know.
CAFFE_ONLY_PARAMS = {
    "argmax_param", "clip_param", "contrastive_loss_param", "crop_param", "dummy_data_param",
    "elu_param", "embed_param", "exp_param", "hdf5_data_param", "hdf5_output_param",
    "hinge_loss_param", "infogain_loss_param", "log_param", "mvn_param", "parameter_param",
    "power_param", "prelu_param", "python_param", "recurrent_param", "reduction_param",
    "sigmoid_param", "spp_param", "slice_param", "swish_param", "tanh_param",
    "threshold_param", "tile_param", "window_data_param"}
_UNKNOWN_FIELD = re.compile(r'Message type "deepdream\.caffe\.(\w+)" has no field named "(\w+)"')


@dataclasses.dataclass
class LayerSpec:
    """One layer of a net: what it is, what it reads and writes, and its weights."""
    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    param: pb.LayerParameter
    blobs: list[np.ndarray] = dataclasses.field(default_factory=list)
    # True for each blob stored in V1's legacy 4-D form (num, channels, height, width): such a
    # blob matches any shape that it equals once padded on the left with ones.
    legacy: list[bool] = dataclasses.field(default_factory=list)
    # For a net without a caffemodel: init(shape, what) makes the weights the layer lacks.
    init: typing.Callable[[tuple[int, ...], str], np.ndarray] | None = None


@dataclasses.dataclass
class NetSpec:
    """A net ready for an engine: layers in run order, the input blob and its declared shape."""
    name: str
    layers: list[LayerSpec]
    input_name: str
    input_shape: tuple[int, ...] | None
    mean_bgr: tuple[float, ...] | None = None  # from a train net's transform_param, if any


def read_prototxt(path: str | Path) -> pb.NetParameter:
    """Parse a text prototxt into a NetParameter (upgraded to the current format).

    Raises ModelError if the file is missing or not a prototxt.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ModelError(f"deploy prototxt not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"cannot read deploy prototxt {path}: {e}") from None
    return upgrade(parse_prototxt(text, path), str(path))


def parse_prototxt(text: str, source: str | Path = "prototxt") -> pb.NetParameter:
    """Parse prototxt ``text`` strictly, as Caffe does: a field that Caffe does not know (a
    misspelt one) is refused naming it, its line and the field meant; the parameter blocks
    of layer types we never run are passed over (CAFFE_ONLY_PARAMS). Raises ModelError."""
    while True:
        net = pb.NetParameter()
        try:
            text_format.Parse(text, net)
            return net
        except text_format.ParseError as e:
            unknown = _UNKNOWN_FIELD.search(str(e))
            if unknown is None:
                raise ModelError(f"{source} is not a valid Caffe prototxt: "
                                 f"{str(e).replace('deepdream.caffe.', 'caffe.')}") from None
            message, field = unknown.groups()
            known = list(pb.DESCRIPTOR.message_types_by_name[message].fields_by_name)
            if message in ("LayerParameter", "V1LayerParameter") and e.GetLine() and (
                    field in CAFFE_ONLY_PARAMS or field.endswith("_param") and
                    not difflib.get_close_matches(field, known, n=1, cutoff=0.9)):
                text = _blank_field(text, e.GetLine(), e.GetColumn())
                continue
            near = difflib.get_close_matches(field, known, n=1, cutoff=0.6)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise ModelError(f"{source}, line {e.GetLine()}: Caffe's {message} has no field "
                             f"'{field}'{hint}") from None


def _blank_field(text: str, line: int, column: int) -> str:
    """``text`` with the field that starts at ``line``:``column`` (1-based) -- its name, and
    its value or its { } block -- turned into spaces, so that later positions stay put."""
    start = sum(len(t) + 1 for t in text.split("\n")[:line - 1]) + column - 1
    i = start
    while i < len(text) and (text[i].isalnum() or text[i] == "_"):    # the name
        i += 1
    while i < len(text) and (text[i].isspace() or text[i] == ":"):
        i += 1
    depth = 0
    while i < len(text):
        c = text[i]
        if c in "\"'":                        # a string, braces and all
            i += 1
            while i < len(text) and text[i] != c:
                i += 2 if text[i] == "\\" else 1
        elif c == "#":                         # a comment, to the end of its line
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif c in "{<":
            depth += 1
        elif c in "}>":
            depth -= 1
        elif depth == 0 and (c.isspace() or c in ";,"):
            break                              # the end of a scalar value
        i += 1
        if depth == 0 and c in "}>\"'":
            break                              # the end of the block or string
    return text[:start] + "".join(ch if ch == "\n" else " " for ch in text[start:i]) + text[i:]


def read_bytes(path: str | Path) -> bytes:
    """A caffemodel's bytes. Raises ModelError if it is missing or cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ModelError(f"caffemodel not found: {path}") from None
    except OSError as e:
        raise ModelError(f"cannot read caffemodel {path}: {e}") from None


def read_caffemodel(path: str | Path, data: bytes | None = None) -> pb.NetParameter:
    """Parse a binary .caffemodel (its bytes ``data`` where the caller has read them) into a
    NetParameter (upgraded to the current format).

    Raises ModelError if the file is missing, truncated or not a caffemodel.
    """
    path = Path(path)
    if data is None:
        data = read_bytes(path)
    net = pb.NetParameter()
    try:
        net.ParseFromString(data)
    except _pb_message.DecodeError:
        raise ModelError(f"{path} is truncated or corrupt: it does not parse as a "
                         "Caffe NetParameter (download it again)") from None
    if not net.layer and not net.layers:
        raise ModelError(f"{path} holds no layers: it is empty, truncated or not a caffemodel")
    return upgrade(net, str(path))


def upgrade(net: pb.NetParameter, source: str = "net") -> pb.NetParameter:
    """Bring a net to the current format: V1 ``layers`` become ``layer``, net-level inputs
    become an Input layer (as Caffe's UpgradeV1Net and UpgradeNetInput do)."""
    if net.layers:
        if net.layer:
            raise ModelError(f"{source} mixes V1 'layers' and current 'layer' entries")
        for old in net.layers:
            new = net.layer.add()
            new.name, new.type = old.name, _v1_type_name(old, source)
            new.bottom.extend(old.bottom)
            new.top.extend(old.top)
            new.include.extend(old.include)
            new.exclude.extend(old.exclude)
            new.blobs.extend(old.blobs)
            new.loss_weight.extend(old.loss_weight)
            for field in _V1_PARAM_FIELDS:
                if old.HasField(field):
                    getattr(new, field).CopyFrom(getattr(old, field))
        del net.layers[:]
    if net.input:
        shapes = list(net.input_shape)
        if not shapes and net.input_dim:
            if len(net.input_dim) != 4 * len(net.input):
                raise ModelError(f"{source}: input_dim must give 4 numbers per input")
            for i in range(len(net.input)):
                shapes.append(pb.BlobShape(dim=net.input_dim[4 * i:4 * i + 4]))
        inputs = []
        for i, name in enumerate(net.input):
            layer = pb.LayerParameter(name=name, type="Input", top=[name])
            if i < len(shapes):
                layer.input_param.shape.add().CopyFrom(shapes[i])
            inputs.append(layer)
        layers = inputs + list(net.layer)
        del net.layer[:]
        net.layer.extend(layers)
        del net.input[:], net.input_dim[:], net.input_shape[:]
    return net


def _v1_type_name(layer: pb.V1LayerParameter, source: str) -> str:
    enum_name = pb.V1LayerParameter.LayerType.Name(layer.type)
    if enum_name not in V1_TYPE_NAMES:
        raise ModelError(f"{source}: layer '{layer.name}' has no type (nets in the V0 format "
                         "of 2013 are not supported)")
    return V1_TYPE_NAMES[enum_name]


def blob_array(blob: pb.BlobProto, where: str) -> tuple[np.ndarray, bool]:
    """A BlobProto as a float32 array and whether its shape is V1's legacy 4-D form.

    Raises ModelError when the stored values do not fill the stated shape (a cut-off file).
    """
    legacy = not blob.HasField("shape")
    if legacy:
        shape = (blob.num, blob.channels, blob.height, blob.width)
    else:
        shape = tuple(blob.shape.dim)
    values = blob.data if len(blob.data) else blob.double_data
    array = np.asarray(values, dtype=np.float32)
    if array.size != int(np.prod(shape)):
        raise ModelError(f"{where} is truncated or corrupt: a blob of shape {shape} holds "
                         f"{array.size} values")
    return array.reshape(shape), legacy


def _meets(rule: pb.NetStateRule, phase: int) -> bool:
    """Caffe's StateMeetsRule for the deploy state: phase TEST, level 0, no stages."""
    if rule.HasField("phase") and rule.phase != phase:
        return False
    if rule.HasField("min_level") and 0 < rule.min_level:
        return False
    if rule.HasField("max_level") and 0 > rule.max_level:
        return False
    return not rule.stage  # the deploy state has no stages, so a required stage is never met


def _in_test_phase(layer: pb.LayerParameter) -> bool:
    if layer.include:
        return any(_meets(r, pb.TEST) for r in layer.include)
    return not any(_meets(r, pb.TEST) for r in layer.exclude)


def _input_shape(layer: pb.LayerParameter) -> tuple[int, ...] | None:
    if layer.type == "Input":
        return tuple(layer.input_param.shape[0].dim) if layer.input_param.shape else None
    if layer.type == "MemoryData":
        p = layer.memory_data_param
        return (1, p.channels, p.height, p.width)
    crop = layer.transform_param.crop_size or layer.data_param.crop_size
    return (1, 3, crop, crop) if crop else None


def _split_source(blob: str, available: set[str]) -> str | None:
    """The blob that Caffe's automatic Split layer copied into ``blob``, when the Split layer
    itself is missing from a saved net (some V1 files keep only the renamed bottoms). Caffe
    names split copies ``<blob>_<layer>_<i>_split_<j>``."""
    match = _SPLIT_NAME.fullmatch(blob)
    if not match:
        return None
    sources = [b for b in available if blob.startswith(b + "_")]
    return max(sources, key=len) if sources else None


def _with_bottoms(layer: pb.LayerParameter, bottoms: list[str]) -> pb.LayerParameter:
    renamed = pb.LayerParameter()
    renamed.CopyFrom(layer)
    del renamed.bottom[:]
    renamed.bottom.extend(bottoms)
    return renamed


def read_net(caffemodel: str | Path | None, deploy: str | Path | None = None,
             data: bytes | None = None) -> NetSpec:
    """Read a net and its weights.

    With ``deploy``, the deploy prototxt gives the structure and the caffemodel the weights,
    matched by layer name (caffemodel layers the deploy lacks, such as Caffe's Split layers or
    a train net's loss layers, are ignored). Without it, the structure saved in the caffemodel
    itself is used: data layers become an Input layer, and layers that need what is then
    missing (labels: loss and accuracy layers) are dropped.

    With ``caffemodel=None`` the layers get no weights (an engine may fill them at random).
    ``data``: the caffemodel's bytes, where the caller has read them (a file is read once).

    Raises ModelError / ModelMismatchError with a sentence naming the file or layer.
    """
    if caffemodel is None and deploy is None:
        raise ModelError("a net needs a caffemodel, a deploy prototxt or both")
    weights_net = read_caffemodel(caffemodel, data) if caffemodel is not None else \
        pb.NetParameter()
    structure = read_prototxt(deploy) if deploy is not None else weights_net
    layers = [l for l in structure.layer if _in_test_phase(l)]
    if not layers:
        raise ModelError(f"{deploy or caffemodel} defines no layers")

    mean_bgr = None
    specs: list[LayerSpec] = []
    available: set[str] = set()
    input_name, input_shape = None, None
    for layer in layers:
        if layer.type == "Input" or layer.type in DATA_TYPES:
            if input_name is None:
                input_name, input_shape = layer.top[0], _input_shape(layer)
                if layer.transform_param.mean_value:
                    mean_bgr = tuple(layer.transform_param.mean_value)
                spec = pb.LayerParameter(name=layer.name, type="Input", top=[input_name])
                specs.append(LayerSpec(layer.name, "Input", [], [input_name], spec))
                available.add(input_name)
            continue
        bottoms = [b if b in available else _split_source(b, available) for b in layer.bottom]
        if None not in bottoms and bottoms != list(layer.bottom):
            layer = _with_bottoms(layer, bottoms)
        if not set(layer.bottom) <= available:
            if deploy is None:  # e.g. a loss layer that reads the labels of a data layer
                log.debug("dropping layer %s (%s): its inputs are not produced",
                          layer.name, layer.type)
                continue
            missing = sorted(set(layer.bottom) - available)
            raise ModelError(f"{deploy}: layer '{layer.name}' reads blob(s) {missing} "
                             "that no earlier layer produces")
        specs.append(LayerSpec(layer.name, layer.type, list(layer.bottom), list(layer.top),
                               layer))
        available.update(layer.top)
    if input_name is None:
        raise ModelError(f"{deploy or caffemodel} declares no input (an Input layer, "
                         "'input:' fields or a data layer)")

    stored = {l.name: l for l in weights_net.layer}
    for spec in specs:
        source = spec.param if spec.param.blobs else stored.get(spec.name)
        if source is not None and source.blobs:
            pairs = [blob_array(b, f"{caffemodel} (layer '{spec.name}')") for b in source.blobs]
            spec.blobs = [a for a, _ in pairs]
            spec.legacy = [lg for _, lg in pairs]
        elif caffemodel is not None and spec.type in TYPES_WITH_WEIGHTS and not (
                spec.type == "Scale"
                                                      and len(spec.bottoms) > 1):
            raise ModelMismatchError(
                f"layer '{spec.name}' ({spec.type}) of {deploy or caffemodel} has no weights "
                f"in {caffemodel}: the deploy prototxt and the caffemodel do not match")
    return NetSpec(structure.name, specs, input_name, input_shape, mean_bgr)
