"""Modern CNN building blocks, their cost, ImageNet weights as an opt-in, and saliency maps.

The blocks are Keras functional pieces: each takes a tensor and returns a tensor, and names every
layer it makes after the block (``{name}_conv1``, ``{name}_add`` …), so a model assembled from them
reads well in ``model.summary()`` and any layer can be picked out with ``model.get_layer``.
Their convolutions use "same" padding and He-normal initial weights (chapter 5):

- :func:`vgg_block` — stacked 3×3 convolutions, then 2×2 max pooling (Simonyan & Zisserman, 2014);
- :func:`residual_block` — two 3×3 convolutions plus a skip connection (He et al., 2015);
- :func:`inception_module` — 1×1, 3×3, 5×5 and pooling branches side by side (Szegedy et al., 2014);
- :func:`separable_block` — a depthwise then a pointwise convolution (MobileNet, Howard et al., 2017).

:func:`layer_costs` and :func:`count_costs` count parameters and multiply-adds of the layers that
dominate a CNN's cost. :func:`fresh_optimizer_state` and :func:`restart` train one compiled model
again from new weights without tracing its training step again. :func:`imagenet_application`
loads a ``keras.applications`` model with ImageNet weights only when the caller opts in to the
download; :func:`unfreeze` prepares a pretrained base for fine-tuning. :func:`saliency_map` and
:func:`gradient_times_input` and :func:`grad_cam` ask a trained classifier which pixels drive its
prediction, and :func:`erase_top_pixels` tests the answer.

Everything here is taught in chapter 9.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from dlbook.checks import check_int as _check_int
from dlbook.data import downloads_allowed


def _check_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string (it prefixes the layer names), "
                         f"got {name!r}")
    return name


def _check_image_tensor(x) -> None:
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 4:
        raise ValueError("x must be a 4-D tensor (batch, height, width, channels), e.g. the "
                         f"output of keras.Input(shape=(h, w, c)); got shape {shape}")


def _conv(filters: int, size: int, name: str, strides: int = 1, use_bias: bool = True,
          activation: str | None = None) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, size, strides=strides, padding="same",
                               activation=activation, use_bias=use_bias,
                               kernel_initializer="he_normal", name=name)


def vgg_block(x, filters: int, convs: int = 2, name: str = "vgg"):
    """VGG block: ``convs`` 3×3 convolutions with ReLU (``{name}_conv{i}``), then 2×2 max pooling.

    Two stacked 3×3 convolutions see a 5×5 window with 18·C² weights instead of a 5×5
    convolution's 25·C², and put a second non-linearity in between. Taught in chapter 9.
    """
    _check_image_tensor(x)
    filters = _check_int("filters", filters)
    convs = _check_int("convs", convs)
    name = _check_name(name)
    for i in range(1, convs + 1):
        x = _conv(filters, 3, f"{name}_conv{i}", activation="relu")(x)
    return keras.layers.MaxPooling2D(2, name=f"{name}_pool")(x)


def residual_block(x, filters: int, stride: int = 1, skip: bool = True, batch_norm: bool = False,
                   name: str = "res"):
    """Basic residual block: ``relu(x' + F(x))`` with ``F`` two 3×3 convolutions.

    ``F`` is ``{name}_conv1`` (stride ``stride``) → [``{name}_bn1``] → ReLU → ``{name}_conv2`` →
    [``{name}_bn2``]. The shortcut ``x'`` is ``x`` itself when the shapes match, otherwise a 1×1
    convolution with stride ``stride`` (``{name}_projection``), as in He et al. (2015), option B.
    With ``skip=False`` the same layers are built without the shortcut: the *plain* block that the
    residual one is compared with. Convolutions feeding a batch normalisation have no bias (its
    shift does that job). Taught in chapter 9.
    """
    _check_image_tensor(x)
    filters = _check_int("filters", filters)
    stride = _check_int("stride", stride)
    if not isinstance(skip, bool):
        raise ValueError(f"skip must be True (residual) or False (plain), got {skip!r}")
    if not isinstance(batch_norm, bool):
        raise ValueError(f"batch_norm must be True or False, got {batch_norm!r}")
    name = _check_name(name)
    y = _conv(filters, 3, f"{name}_conv1", strides=stride, use_bias=not batch_norm)(x)
    if batch_norm:
        y = keras.layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = keras.layers.Activation("relu", name=f"{name}_relu1")(y)
    y = _conv(filters, 3, f"{name}_conv2", use_bias=not batch_norm)(y)
    if batch_norm:
        y = keras.layers.BatchNormalization(name=f"{name}_bn2")(y)
    if skip:
        shortcut = x
        if stride != 1 or x.shape[-1] != filters:
            shortcut = _conv(filters, 1, f"{name}_projection", strides=stride,
                             use_bias=not batch_norm)(x)
            if batch_norm:
                shortcut = keras.layers.BatchNormalization(name=f"{name}_projection_bn")(shortcut)
        y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def inception_module(x, filters_1x1: int, reduce_3x3: int, filters_3x3: int, reduce_5x5: int,
                     filters_5x5: int, pool_projection: int, name: str = "inception"):
    """GoogLeNet's Inception module: four branches side by side, concatenated along channels.

    ``{name}_1x1``; ``{name}_3x3_reduce`` → ``{name}_3x3``; ``{name}_5x5_reduce`` → ``{name}_5x5``;
    ``{name}_pool`` (3×3 max, stride 1) → ``{name}_pool_projection``. All convolutions use ReLU
    and 'same' padding, so the output keeps the input's height and width and has
    ``filters_1x1 + filters_3x3 + filters_5x5 + pool_projection`` channels. The 1×1 "reduce"
    convolutions shrink the channels before the expensive 3×3 and 5×5 ones. Taught in chapter 9.
    """
    _check_image_tensor(x)
    counts = {"filters_1x1": filters_1x1, "reduce_3x3": reduce_3x3, "filters_3x3": filters_3x3,
              "reduce_5x5": reduce_5x5, "filters_5x5": filters_5x5,
              "pool_projection": pool_projection}
    f1, r3, f3, r5, f5, fp = (_check_int(argument, value) for argument, value in counts.items())
    name = _check_name(name)
    branch_1 = _conv(f1, 1, f"{name}_1x1", activation="relu")(x)
    branch_3 = _conv(r3, 1, f"{name}_3x3_reduce", activation="relu")(x)
    branch_3 = _conv(f3, 3, f"{name}_3x3", activation="relu")(branch_3)
    branch_5 = _conv(r5, 1, f"{name}_5x5_reduce", activation="relu")(x)
    branch_5 = _conv(f5, 5, f"{name}_5x5", activation="relu")(branch_5)
    branch_pool = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = _conv(fp, 1, f"{name}_pool_projection", activation="relu")(branch_pool)
    return keras.layers.Concatenate(name=f"{name}_concat")(
        [branch_1, branch_3, branch_5, branch_pool])


def separable_block(x, filters: int, stride: int = 1, name: str = "separable"):
    """MobileNet block: 3×3 depthwise convolution → ReLU → 1×1 pointwise convolution → ReLU.

    ``{name}_depthwise`` filters each input channel on its own (k²·C weights); ``{name}_pointwise``
    then mixes channels (C·C' weights). Together they replace a 3×3 convolution's k²·C·C' weights,
    about 1/C' + 1/k² as many. ``stride`` applies to the depthwise step. Taught in chapter 9.
    """
    _check_image_tensor(x)
    filters = _check_int("filters", filters)
    stride = _check_int("stride", stride)
    name = _check_name(name)
    x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", activation="relu",
                                     depthwise_initializer="he_normal",
                                     name=f"{name}_depthwise")(x)
    return _conv(filters, 1, f"{name}_pointwise", activation="relu")(x)


@dataclass(frozen=True)
class LayerCost:
    """Parameters and multiply-adds (per example) of one layer. Taught in chapter 9."""

    name: str
    kind: str
    params: int
    macs: int


COUNTED_LAYERS = (keras.layers.Conv2D, keras.layers.SeparableConv2D,
                  keras.layers.DepthwiseConv2D, keras.layers.Dense)


def _layer_macs(layer, input_shape, output_shape) -> int:
    """Multiply-adds for one example; biases and activations are not counted."""
    out_positions = int(np.prod(output_shape[1:-1]))  # spatial positions (Dense: leading axes)
    c_in = int(input_shape[-1])
    if isinstance(layer, keras.layers.Dense):
        return out_positions * c_in * layer.units
    window = int(np.prod(layer.kernel_size))
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return out_positions * window * c_in * layer.depth_multiplier
    if isinstance(layer, keras.layers.SeparableConv2D):
        depthwise = out_positions * window * c_in * layer.depth_multiplier
        return depthwise + out_positions * c_in * layer.depth_multiplier * layer.filters
    return out_positions * window * (c_in // layer.groups) * layer.filters


def layer_costs(model: keras.Model) -> list[LayerCost]:
    """Parameters and multiply-adds per example of every Conv2D, SeparableConv2D,
    DepthwiseConv2D and Dense layer of ``model``, in order (nested models are searched too).

    A k×k convolution from C to C' channels producing an H×W map costs H·W·k²·C·C'
    multiply-adds; a depthwise one H·W·k²·C; a dense layer C·C'. Pooling, normalisation,
    activations and additions are cheap next to these and are not counted. A layer called on
    several inputs (shared weights) is counted once, for its first call. Taught in chapter 9.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}")
    if not getattr(model, "inputs", None):
        raise ValueError(f"model must be a functional or Sequential model built from "
                         f"keras.Input, so that every layer's shapes are known; {model.name!r} "
                         "has no symbolic inputs")
    costs = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            costs.extend(layer_costs(layer))
        elif isinstance(layer, COUNTED_LAYERS):
            macs = _layer_macs(layer, layer.input.shape, layer.output.shape)
            costs.append(LayerCost(layer.name, type(layer).__name__, int(layer.count_params()),
                                   macs))
    return costs


def count_costs(model: keras.Model) -> tuple[int, int]:
    """``(parameters, multiply-adds per example)`` summed over :func:`layer_costs`.

    Taught in chapter 9.
    """
    costs = layer_costs(model)
    return sum(c.params for c in costs), sum(c.macs for c in costs)


def fresh_optimizer_state(model: keras.Model) -> list[np.ndarray]:
    """Copies of a compiled model's optimizer variables before any step (step count, moments).

    Creates the optimizer's variables if need be (``optimizer.build``), which also spares
    ``fit`` a second trace of the training step. Pair with :func:`restart`. Taught in chapter 9.
    """
    optimizer = getattr(model, "optimizer", None)
    if not isinstance(model, keras.Model) or optimizer is None:
        raise ValueError("model must be a compiled keras.Model (call model.compile first)")
    optimizer.build(model.trainable_variables)
    return [np.array(variable.numpy()) for variable in optimizer.variables]


def restart(model: keras.Model, weights, optimizer_state) -> None:
    """Give a compiled model new starting ``weights`` and the optimizer state of
    :func:`fresh_optimizer_state`, keeping its traced training step.

    Keras traces ``fit``'s training step into a graph once per compiled model; for a deep model
    on a CPU that takes longer than training on a small dataset. Training the same architecture
    again from another start is then cheaper this way than building and compiling a new model,
    and gives the same result. Taught in chapter 9.
    """
    optimizer = getattr(model, "optimizer", None)
    if not isinstance(model, keras.Model) or optimizer is None:
        raise ValueError("model must be a compiled keras.Model (call model.compile first)")
    if len(optimizer_state) != len(optimizer.variables):
        raise ValueError(f"optimizer_state has {len(optimizer_state)} arrays but the optimizer "
                         f"has {len(optimizer.variables)} variables: take it with "
                         "fresh_optimizer_state from this model")
    model.set_weights(weights)
    for variable, value in zip(optimizer.variables, optimizer_state, strict=True):
        variable.assign(value)


def _all_layers(model: keras.Model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def unfreeze(base: keras.Model, keep_batch_norm_frozen: bool = True) -> int:
    """Make a frozen pretrained ``base`` trainable for fine-tuning, except its batch normalisation.

    Makes ``base`` and every layer inside it (nested models included) trainable, except, with
    ``keep_batch_norm_frozen``, its ``BatchNormalization`` layers, which stay frozen. In Keras 3 a frozen
    batch-normalisation layer runs in inference mode: it normalises with the moving statistics
    learned in pretraining and does not update them. That is what fine-tuning on a few examples
    needs, and ``base(x, training=False)`` in a functional model does *not* ensure it, because
    ``fit`` calls the outer model with ``training=True`` and that overrides the recorded argument
    (keras-team/keras#20285). Returns the number of batch-normalisation layers kept frozen.
    Recompile the model afterwards, at a low learning rate. Taught in chapter 9.
    """
    if not isinstance(base, keras.Model):
        raise ValueError(f"base must be a keras.Model, got {type(base).__name__}")
    if not isinstance(keep_batch_norm_frozen, bool):
        raise ValueError(f"keep_batch_norm_frozen must be True or False, "
                         f"got {keep_batch_norm_frozen!r}")
    base.trainable = True
    frozen = 0
    for layer in _all_layers(base):  # parents before their sublayers
        keep = keep_batch_norm_frozen and isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = not keep
        frozen += keep
    return frozen


class PretrainedWeightsError(RuntimeError):
    """ImageNet weights could not be provided; the message says what to do. Taught in chapter 9."""


def imagenet_application(name: str, allow_download: bool = False, **kwargs) -> keras.Model:
    """A ``keras.applications`` model with ImageNet weights — an explicit, online opt-in.

    ``imagenet_application("MobileNetV2", allow_download=True)`` calls
    ``keras.applications.MobileNetV2(weights="imagenet", **kwargs)``, which downloads the weights
    once (14 MB for MobileNetV2, 98 MB for ResNet50) into ``~/.keras/models`` and reuses them
    afterwards. Without ``allow_download=True``, with downloads switched off
    (``DLBOOK_OFFLINE=1``), or when the download fails, it raises :class:`PretrainedWeightsError`
    saying what to do. The book's chapters never call it with ``allow_download=True``: they run
    offline and build every network they use. Taught in chapter 9.
    """
    if not isinstance(name, str) or not callable(getattr(keras.applications, name, None)):
        raise ValueError(f"name must name a keras.applications model such as 'MobileNetV2' or "
                         f"'ResNet50', got {name!r}")
    if not isinstance(allow_download, bool):
        raise ValueError(f"allow_download must be True or False, got {allow_download!r}")
    if "weights" in kwargs:
        raise ValueError("do not pass weights: this function always loads weights='imagenet'; "
                         f"for random weights call keras.applications.{name}(weights=None)")
    if not allow_download:
        raise PretrainedWeightsError(
            f"ImageNet weights for {name} are a download; opt in with "
            f"imagenet_application({name!r}, allow_download=True) while online, or use "
            f"keras.applications.{name}(weights=None) for the architecture with random weights."
        )
    if not downloads_allowed():
        raise PretrainedWeightsError(
            f"downloads are switched off (DLBOOK_OFFLINE=1), so the ImageNet weights for {name} "
            "cannot be fetched. Unset DLBOOK_OFFLINE and call again while online; Keras then "
            "keeps the file in ~/.keras/models for later offline use."
        )
    try:
        return getattr(keras.applications, name)(weights="imagenet", **kwargs)
    except Exception as error:  # Keras reports a failed fetch as a bare Exception
        if not (isinstance(error, OSError) or "fetch failure" in str(error).lower()):
            raise
        raise PretrainedWeightsError(
            f"could not download the ImageNet weights for {name} ({error}); check the "
            "connection (and any proxy), then call again; Keras keeps the file in "
            "~/.keras/models once it has it."
        ) from error


def _class_indices(model: keras.Model, images: tf.Tensor, class_index) -> tf.Tensor:
    if class_index is None:
        return tf.argmax(model(images, training=False), axis=-1, output_type=tf.int32)
    n, classes = int(images.shape[0]), int(model.output.shape[-1])
    indices = np.asarray(class_index)
    if (indices.ndim > 1 or indices.size not in (1, n)
            or not np.issubdtype(indices.dtype, np.integer)
            or indices.min() < 0 or indices.max() >= classes):
        raise ValueError(f"class_index must be None, an int or one int per image ({n}), each in "
                         f"[0, {classes}); got {class_index!r}")
    return tf.constant(np.broadcast_to(indices, (n,)), dtype=tf.int32)


def _as_images(model: keras.Model, images) -> tf.Tensor:
    images = tf.convert_to_tensor(np.asarray(images, dtype="float32"))
    expected = tuple(model.input.shape[1:])
    if tuple(images.shape[1:]) != expected or images.shape[0] == 0:
        raise ValueError(f"images must have shape (n, {', '.join(map(str, expected))}) with "
                         f"n >= 1 for this model, got {tuple(images.shape)}")
    return images


def _input_gradients(model: keras.Model, images, class_index) -> tuple[np.ndarray, np.ndarray]:
    images = _as_images(model, images)
    classes = _class_indices(model, images, class_index)
    with tf.GradientTape() as tape:
        tape.watch(images)
        scores = tf.gather(model(images, training=False), classes, axis=-1, batch_dims=1)
    return images.numpy(), tape.gradient(scores, images).numpy()


def saliency_map(model: keras.Model, images, class_index=None) -> np.ndarray:
    """Vanilla gradient saliency (Simonyan et al., 2013): ``max_c |∂ score / ∂ pixel|``.

    ``score`` is the model's output for ``class_index`` (an int, or one per image; default: the
    predicted class). Use a model that outputs logits, as Simonyan et al. do: a softmax output
    saturates, and its gradient then says little. Returns ``(n, height, width)``, non-negative;
    the channel axis is reduced by its maximum. Taught in chapter 9.
    """
    _, gradients = _input_gradients(model, images, class_index)
    return np.max(np.abs(gradients), axis=-1)


def gradient_times_input(model: keras.Model, images, class_index=None) -> np.ndarray:
    """``Σ_c pixel · ∂ score / ∂ pixel`` per pixel (Shrikumar et al., 2017), signed.

    To first order it is how much the score would *fall* if the pixel were set to 0: the
    gradient says how sensitive the score is, the input how large the change would be. For a
    linear score without bias the map sums exactly to the score. Same arguments as
    :func:`saliency_map`; returns ``(n, height, width)``. Taught in chapter 9.
    """
    images, gradients = _input_gradients(model, images, class_index)
    return (images * gradients).sum(axis=-1)


def grad_cam(model: keras.Model, images, layer_name: str, class_index=None,
             upsample: bool = True) -> np.ndarray:
    """Grad-CAM (Selvaraju et al., 2017): where in a convolutional layer the class evidence lies.

    With ``A`` the feature maps of ``layer_name`` and ``y`` the score of the class (as in
    :func:`saliency_map`), each channel ``k`` gets the weight ``α_k = mean over positions of
    ∂y/∂A_k``, and the map is ``ReLU(Σ_k α_k A_k)``: non-negative, ``(n, h_l, w_l)``, or resized
    bilinearly to the input's height and width when ``upsample`` is True. Taught in chapter 9.
    """
    images = _as_images(model, images)
    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        raise ValueError(f"layer_name {layer_name!r} is not a layer of {model.name!r}") from None
    if len(layer.output.shape) != 4:
        raise ValueError(f"layer_name must name a layer with 4-D output (a convolutional feature "
                         f"map), {layer_name!r} outputs shape {layer.output.shape}")
    classes = _class_indices(model, images, class_index)
    probe = keras.Model(model.inputs, [layer.output, model.output])
    with tf.GradientTape() as tape:
        features, outputs = probe(images, training=False)
        scores = tf.gather(outputs, classes, axis=-1, batch_dims=1)
    gradients = tape.gradient(scores, features)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    maps = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1, keepdims=True))
    if upsample:
        maps = tf.image.resize(maps, images.shape[1:3], method="bilinear")
    return maps.numpy()[..., 0]


def erase_top_pixels(images, scores, count: int, candidates=None) -> np.ndarray:
    """Copies of ``images`` with the ``count`` highest-scoring pixels of each set to zero.

    ``images`` is ``(n, h, w)`` or ``(n, h, w, 1)``; ``scores`` ``(n, h, w)``, e.g. a saliency
    map. With ``candidates`` (a boolean ``(n, h, w)`` mask, e.g. the inked pixels), only those
    pixels compete. The *deletion test*: if a map points at the pixels a prediction rests on,
    erasing them should hurt that prediction more than erasing as many pixels chosen otherwise.
    Taught in chapter 9.
    """
    images = np.asarray(images, dtype="float32")
    scores = np.asarray(scores, dtype="float64")
    if images.ndim == 4 and images.shape[-1] == 1:
        flat_shape = images.shape[:3]
    elif images.ndim == 3:
        flat_shape = images.shape
    else:
        raise ValueError(f"images must be (n, h, w) or (n, h, w, 1), got shape {images.shape}")
    if scores.shape != flat_shape:
        raise ValueError(f"scores must have shape {flat_shape}, one per pixel, got {scores.shape}")
    count = _check_int("count", count)
    n = flat_shape[0]
    allowed = np.ones(flat_shape, bool) if candidates is None else np.asarray(candidates)
    if allowed.shape != flat_shape or allowed.dtype != bool:
        raise ValueError(f"candidates must be a boolean mask of shape {flat_shape}")
    if (allowed.reshape(n, -1).sum(axis=1) < count).any():
        raise ValueError(f"some image has fewer than count={count} candidate pixels")
    ranked = np.where(allowed, scores, -np.inf).reshape(n, -1)
    top = np.argsort(-ranked, axis=1, kind="stable")[:, :count]
    erased = images.reshape(n, -1).copy()
    np.put_along_axis(erased, top, 0.0, axis=1)
    return erased.reshape(images.shape)
