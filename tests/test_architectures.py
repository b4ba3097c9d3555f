"""Tests of dlbook.architectures: block shapes and names, parameter and multiply-add counts by hand,
restarting a compiled model, unfreezing a base for fine-tuning (and the Keras behaviour that makes
it necessary), the ImageNet opt-in and its offline failures (never downloading), saliency,
Grad-CAM and the deletion test's erasing."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import subprocess  # noqa: E402
import sys  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dlbook.architectures import (  # noqa: E402
    PretrainedWeightsError,
    count_costs,
    erase_top_pixels,
    fresh_optimizer_state,
    grad_cam,
    gradient_times_input,
    imagenet_application,
    inception_module,
    layer_costs,
    residual_block,
    restart,
    saliency_map,
    separable_block,
    unfreeze,
    vgg_block,
)


def conv_params(k, c_in, c_out, bias=True):
    return k * k * c_in * c_out + (c_out if bias else 0)


def wrap(shape, block, **kwargs):
    inputs = keras.Input(shape)
    return keras.Model(inputs, block(inputs, **kwargs))


# --- blocks: shapes, names, parameter counts ----------------------------------------------------

def test_vgg_block_shape_names_and_params():
    model = wrap((8, 8, 3), vgg_block, filters=16, convs=3, name="b1")
    assert model.output.shape == (None, 4, 4, 16)
    assert [layer.name for layer in model.layers[1:]] == ["b1_conv1", "b1_conv2", "b1_conv3",
                                                           "b1_pool"]
    assert model.count_params() == conv_params(3, 3, 16) + 2 * conv_params(3, 16, 16)


def test_residual_block_identity_shortcut():
    model = wrap((8, 8, 16), residual_block, filters=16, name="r")
    assert model.output.shape == (None, 8, 8, 16)
    names = [layer.name for layer in model.layers]
    assert "r_add" in names and "r_projection" not in names
    assert model.count_params() == 2 * conv_params(3, 16, 16)


@pytest.mark.parametrize("stride, c_in, expected", [(2, 16, (None, 4, 4, 32)),
                                                    (1, 8, (None, 8, 8, 32)),
                                                    (2, 32, (None, 4, 4, 32))])
def test_residual_block_projection_shortcut(stride, c_in, expected):
    model = wrap((8, 8, c_in), residual_block, filters=32, stride=stride, name="r")
    assert model.output.shape == expected
    assert model.get_layer("r_projection").kernel.shape == (1, 1, c_in, 32)
    assert model.count_params() == (conv_params(3, c_in, 32) + conv_params(3, 32, 32)
                                    + conv_params(1, c_in, 32))


def test_plain_block_has_same_convolutions_and_no_shortcut():
    plain = wrap((8, 8, 16), residual_block, filters=16, skip=False, name="p")
    names = [layer.name for layer in plain.layers]
    assert "p_add" not in names and "p_conv1" in names and "p_conv2" in names
    assert plain.count_params() == 2 * conv_params(3, 16, 16)


def test_residual_block_with_batch_norm_drops_conv_biases():
    model = wrap((8, 8, 8), residual_block, filters=16, stride=2, batch_norm=True, name="r")
    for conv in ("r_conv1", "r_conv2", "r_projection"):
        assert model.get_layer(conv).bias is None
    for norm in ("r_bn1", "r_bn2", "r_projection_bn"):
        assert isinstance(model.get_layer(norm), keras.layers.BatchNormalization)
    bn = 4 * 16  # gamma, beta, moving mean, moving variance
    expected = (conv_params(3, 8, 16, False) + conv_params(3, 16, 16, False)
                + conv_params(1, 8, 16, False) + 3 * bn)
    assert model.count_params() == expected


def test_residual_block_computes_relu_of_input_plus_residual():
    model = wrap((5, 5, 4), residual_block, filters=4, name="r")
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 4)).astype("float32")
    conv2 = model.get_layer("r_conv2")
    conv2.set_weights([np.zeros_like(w) for w in conv2.get_weights()])  # F(x) = 0
    np.testing.assert_allclose(model(x).numpy(), np.maximum(x, 0), atol=1e-6)
    residual = keras.Model(model.input, model.get_layer("r_conv2").output)
    plain_sum = np.maximum(x + residual(x).numpy(), 0)
    np.testing.assert_allclose(model(x).numpy(), plain_sum, atol=1e-6)


def test_inception_module_matches_googlenet_3a():
    model = wrap((28, 28, 192), inception_module, filters_1x1=64, reduce_3x3=96, filters_3x3=128,
                 reduce_5x5=16, filters_5x5=32, pool_projection=32, name="3a")
    assert model.output.shape == (None, 28, 28, 64 + 128 + 32 + 32)
    expected = (conv_params(1, 192, 64) + conv_params(1, 192, 96) + conv_params(3, 96, 128)
                + conv_params(1, 192, 16) + conv_params(5, 16, 32) + conv_params(1, 192, 32))
    params, macs = count_costs(model)
    assert params == model.count_params() == expected == 163_696
    assert macs == 28 * 28 * (expected - (64 + 96 + 128 + 16 + 32 + 32))  # 128M, as in the paper
    assert model.get_layer("3a_pool").pool_size == (3, 3)


def test_separable_block_matches_mobilenet_table():
    model = wrap((14, 14, 512), separable_block, filters=512, name="s")
    params, macs = count_costs(model)
    assert params == (9 * 512 + 512) + (512 * 512 + 512)
    assert macs == 14 * 14 * 9 * 512 + 14 * 14 * 512 * 512 == 52_283_392  # MobileNet: 52.3M
    standard = keras.Model(model.input, keras.layers.Conv2D(512, 3, padding="same")(model.input))
    assert count_costs(standard) == (conv_params(3, 512, 512), 462_422_016)  # MobileNet: 462M


def test_separable_block_stride():
    model = wrap((8, 8, 4), separable_block, filters=6, stride=2, name="s")
    assert model.output.shape == (None, 4, 4, 6)
    assert model.get_layer("s_depthwise").strides == (2, 2)


# --- cost counting ------------------------------------------------------------------------------

def test_layer_costs_hand_formulas_for_each_layer_kind():
    inputs = keras.Input((10, 10, 6))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="strided")(inputs)  # 5×5
    x = keras.layers.Conv2D(8, 3, padding="valid", groups=2, name="grouped")(x)  # 3×3
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(x)
    x = keras.layers.SeparableConv2D(5, (1, 3), padding="same", depth_multiplier=1,
                                     name="sep")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(7, name="dense")(x)
    model = keras.Model(inputs, outputs)
    costs = {c.name: c for c in layer_costs(model)}
    assert list(costs) == ["strided", "grouped", "dw", "sep", "dense"]
    assert costs["strided"].macs == 5 * 5 * 9 * 6 * 8
    assert costs["grouped"].macs == 3 * 3 * 9 * (8 // 2) * 8
    assert costs["dw"].macs == 3 * 3 * 9 * 8 * 2
    assert costs["sep"].macs == 3 * 3 * 3 * 16 + 3 * 3 * 16 * 5
    assert costs["dense"].macs == 3 * 3 * 5 * 7
    for cost in costs.values():
        assert cost.params == model.get_layer(cost.name).count_params()
    assert costs["dw"].kind == "DepthwiseConv2D"
    assert count_costs(model) == (sum(c.params for c in costs.values()),
                                  sum(c.macs for c in costs.values()))


def test_layer_costs_dense_on_sequences_and_nested_models():
    inner_in = keras.Input((4, 3))
    inner = keras.Model(inner_in, keras.layers.Dense(5, name="inner_dense")(inner_in), name="in")
    outer_in = keras.Input((4, 3))
    x = inner(outer_in)
    model = keras.Model(outer_in, keras.layers.Dense(2, name="outer_dense")(x))
    costs = layer_costs(model)
    assert [(c.name, c.macs) for c in costs] == [("inner_dense", 4 * 3 * 5),
                                                ("outer_dense", 4 * 5 * 2)]


def test_layer_costs_sequential():
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3, name="c")])
    assert count_costs(model) == (3 * 3 * 2 + 2, 4 * 4 * 9 * 2)


def test_layer_costs_errors():
    with pytest.raises(ValueError, match="must be a keras.Model"):
        layer_costs(keras.layers.Dense(3))

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="keras.Input"):
        count_costs(Subclassed())


# --- block argument validation ------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda x: vgg_block(x, 0), "filters must be an int of at least 1"),
    (lambda x: vgg_block(x, 8, convs=1.5), "convs must be an int"),
    (lambda x: vgg_block(x, 8, name=""), "name must be a non-empty string"),
    (lambda x: residual_block(x, 8, stride=0), "stride must be an int"),
    (lambda x: residual_block(x, 8, skip="yes"), "skip must be True"),
    (lambda x: residual_block(x, 8, batch_norm=1), "batch_norm must be True or False"),
    (lambda x: inception_module(x, 8, 8, 8, 8, 0, 8), "filters_5x5 must be an int"),
    (lambda x: separable_block(x, True), "filters must be an int"),
])
def test_block_argument_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call(keras.Input((8, 8, 3)))


def test_blocks_reject_non_image_tensors():
    with pytest.raises(ValueError, match="x must be a 4-D tensor"):
        vgg_block(keras.Input((8, 3)), 4)
    with pytest.raises(ValueError, match="x must be a 4-D tensor"):
        residual_block(np.zeros((8, 8)), 4)


# --- ImageNet weights: an explicit opt-in that fails clearly offline ----------------------------

@pytest.fixture
def fake_application(monkeypatch):
    calls = []

    def application(**kwargs):
        calls.append(kwargs)
        return "model"

    monkeypatch.setattr(keras.applications, "MobileNetV2", application)
    return calls


def test_imagenet_without_opt_in_never_calls_keras(fake_application, monkeypatch):
    monkeypatch.delenv("DLBOOK_OFFLINE", raising=False)
    with pytest.raises(PretrainedWeightsError, match="allow_download=True"):
        imagenet_application("MobileNetV2")
    assert fake_application == []


def test_imagenet_offline_never_calls_keras(fake_application, monkeypatch):
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")
    with pytest.raises(PretrainedWeightsError, match="DLBOOK_OFFLINE=1"):
        imagenet_application("MobileNetV2", allow_download=True)
    assert fake_application == []


def test_imagenet_opt_in_passes_weights_and_arguments(fake_application, monkeypatch):
    monkeypatch.delenv("DLBOOK_OFFLINE", raising=False)
    assert imagenet_application("MobileNetV2", allow_download=True, alpha=0.5) == "model"
    assert fake_application == [{"weights": "imagenet", "alpha": 0.5}]


def test_imagenet_failed_download_through_real_keras(tmp_path):
    """The real Keras download path, in a fresh interpreter whose only route to the internet is a
    proxy that refuses every connection, and whose Keras home is an empty folder: the download
    fails on any machine, online or not, and nothing is fetched."""
    script = (
        "import warnings; warnings.simplefilter('ignore')\n"
        "from dlbook.architectures import PretrainedWeightsError, imagenet_application\n"
        "try:\n"
        "    imagenet_application('MobileNetV3Small', allow_download=True, include_top=False,\n"
        "                         input_shape=(32, 32, 3), include_preprocessing=False)\n"
        "except PretrainedWeightsError as error:\n"
        "    print('PretrainedWeightsError:', error)\n"
    )
    refused = "http://127.0.0.1:9"  # the discard port: nothing listens there
    environment = {key: value for key, value in os.environ.items()
                   if key.lower() not in ("no_proxy", "dlbook_offline")}
    environment.update(KERAS_HOME=str(tmp_path), HTTPS_PROXY=refused, HTTP_PROXY=refused,
                       https_proxy=refused, http_proxy=refused, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=environment, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "PretrainedWeightsError: could not download" in result.stdout, result.stdout
    assert "connection" in result.stdout
    assert not list((tmp_path / "models").rglob("*")), "a weights file was written"


def test_imagenet_other_errors_are_not_disguised(monkeypatch):
    def broken(**kwargs):
        raise ValueError("bad input_shape")

    monkeypatch.delenv("DLBOOK_OFFLINE", raising=False)
    monkeypatch.setattr(keras.applications, "MobileNetV2", broken)
    with pytest.raises(ValueError, match="bad input_shape"):
        imagenet_application("MobileNetV2", allow_download=True)


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "ResNet9000"}, "name must name a keras.applications model"),
    ({"name": "resnet50"}, "name must name"),  # a module, not a model function
    ({"name": 50}, "name must name"),
    ({"name": "ResNet50", "allow_download": "yes"}, "allow_download must be True or False"),
    ({"name": "ResNet50", "weights": None}, "do not pass weights"),
])
def test_imagenet_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        imagenet_application(**kwargs)


# --- saliency and Grad-CAM ----------------------------------------------------------------------

def linear_model(seed=0):
    """logits = W · flatten(x) + b, so the saliency of class c is |W[:, c]|, exactly."""
    inputs = keras.Input((4, 5, 2))
    outputs = keras.layers.Dense(3, name="logits")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(seed)
    model.get_layer("logits").set_weights([rng.normal(size=(40, 3)).astype("float32"),
                                           rng.normal(size=3).astype("float32")])
    return model


def test_saliency_of_a_linear_model_is_its_weights():
    model = linear_model()
    images = np.random.default_rng(1).random((3, 4, 5, 2)).astype("float32")
    kernel = model.get_layer("logits").get_weights()[0]
    maps = saliency_map(model, images, class_index=[0, 2, 1])
    assert maps.shape == (3, 4, 5)
    for i, c in enumerate([0, 2, 1]):
        expected = np.abs(kernel[:, c].reshape(4, 5, 2)).max(axis=-1)
        np.testing.assert_allclose(maps[i], expected, rtol=1e-6)


def test_saliency_defaults_to_predicted_class_and_is_non_negative():
    model = linear_model()
    images = np.random.default_rng(2).random((5, 4, 5, 2)).astype("float32")
    predicted = np.argmax(model(images).numpy(), axis=-1)
    np.testing.assert_allclose(saliency_map(model, images),
                               saliency_map(model, images, class_index=predicted))
    assert (saliency_map(model, images, class_index=1) >= 0).all()


def test_saliency_agrees_with_finite_differences_on_a_nonlinear_model():
    inputs = keras.Input((3, 3, 1))
    x = keras.layers.Conv2D(4, 2, activation="tanh")(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    image = np.random.default_rng(3).random((1, 3, 3, 1))
    step = 1e-2
    numeric = np.zeros((3, 3))
    for r in range(3):
        for c in range(3):
            up, down = image.copy(), image.copy()
            up[0, r, c, 0] += step
            down[0, r, c, 0] -= step
            scores = [float(model(v.astype("float32")).numpy()[0, 1]) for v in (up, down)]
            numeric[r, c] = abs(scores[0] - scores[1]) / (2 * step)
    np.testing.assert_allclose(saliency_map(model, image, class_index=1)[0], numeric,
                               rtol=2e-2, atol=1e-3)


def cam_model():
    inputs = keras.Input((6, 6, 1))
    features = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    return keras.Model(inputs, keras.layers.Dense(4, name="logits")(pooled))


def test_grad_cam_equals_class_activation_map_for_gap_models():
    """With global average pooling then Dense, Grad-CAM is ReLU(Σ_k w_kc A_k) / (h·w)."""
    model = cam_model()
    images = np.random.default_rng(4).random((2, 6, 6, 1)).astype("float32")
    features = keras.Model(model.input, model.get_layer("conv").output)(images).numpy()
    kernel = model.get_layer("logits").get_weights()[0]
    maps = grad_cam(model, images, "conv", class_index=3, upsample=False)
    assert maps.shape == (2, 6, 6)
    expected = np.maximum(np.einsum("nhwk,k->nhw", features, kernel[:, 3]) / 36, 0)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-7)


def test_grad_cam_upsamples_to_the_input_and_is_non_negative():
    inputs = keras.Input((8, 8, 1))
    x = vgg_block(inputs, 4, convs=1, name="b")
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(5).random((3, 8, 8, 1)).astype("float32")
    assert grad_cam(model, images, "b_conv1", upsample=False).shape == (3, 8, 8)
    coarse = grad_cam(model, images, "b_pool", upsample=False)
    fine = grad_cam(model, images, "b_pool")
    assert coarse.shape == (3, 4, 4) and fine.shape == (3, 8, 8)
    assert (coarse >= 0).all() and (fine >= 0).all()


def test_saliency_and_grad_cam_errors():
    model = cam_model()
    images = np.zeros((2, 6, 6, 1), "float32")
    with pytest.raises(ValueError, match=r"images must have shape \(n, 6, 6, 1\)"):
        saliency_map(model, np.zeros((2, 5, 5, 1)))
    with pytest.raises(ValueError, match=r"class_index must be None, an int or one int per "
                                         r"image \(2\), each in \[0, 4\)"):
        saliency_map(model, images, class_index=4)
    for wrong in ([0.5, 1.0], [0, 1, 2], [[0], [1]], True, -1):
        with pytest.raises(ValueError, match="class_index"):
            saliency_map(model, images, class_index=wrong)
    with pytest.raises(ValueError, match="n >= 1"):
        grad_cam(model, np.zeros((0, 6, 6, 1)), "conv")
    with pytest.raises(ValueError, match="'nope' is not a layer"):
        grad_cam(model, images, "nope")
    with pytest.raises(ValueError, match="4-D output"):
        grad_cam(model, images, "logits")


# --- restarting a compiled model ----------------------------------------------------------------

def small_regressor(seed):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu",
                                kernel_initializer=keras.initializers.HeNormal(seed))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


def test_restart_reproduces_a_fresh_model_and_keeps_the_traced_step():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)), rng.normal(size=(64, 1))
    model = small_regressor(1)
    start, state = model.get_weights(), fresh_optimizer_state(model)
    model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    first = model.get_weights()
    traced = model.train_function
    restart(model, start, state)
    np.testing.assert_array_equal(model.get_weights()[0], start[0])
    assert int(model.optimizer.iterations.numpy()) == 0
    model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    assert model.train_function is traced  # no new trace
    fresh = small_regressor(1)
    fresh.set_weights(start)
    fresh.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    for again, other, original in zip(model.get_weights(), fresh.get_weights(), first,
                                      strict=True):
        np.testing.assert_allclose(again, original, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(again, other, rtol=1e-5, atol=1e-6)


def test_restart_errors():
    uncompiled = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="compiled keras.Model"):
        fresh_optimizer_state(uncompiled)
    with pytest.raises(ValueError, match="compiled keras.Model"):
        restart(uncompiled, uncompiled.get_weights(), [])
    model = small_regressor(0)
    with pytest.raises(ValueError, match="optimizer_state has 1 arrays"):
        restart(model, model.get_weights(), [np.zeros(1)])


# --- unfreezing a pretrained base ------------------------------------------------------------------

def base_with_batch_norm():
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.5, name="bn")(x)
    x = keras.layers.Activation("relu")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="base")


def with_head(base):
    inputs = keras.Input((6, 6, 1))
    return keras.Model(inputs, keras.layers.Dense(2)(base(inputs, training=False)))


def test_training_false_in_a_functional_model_is_overridden_by_fit():
    """The Keras 3 behaviour that unfreeze works around (keras-team/keras#20285)."""
    base = base_with_batch_norm()
    model = with_head(base)
    x = np.random.default_rng(0).normal(2.0, 1.0, (8, 6, 6, 1)).astype("float32")
    assert not np.allclose(model(x, training=True), model(x, training=False), atol=1e-5)
    base.trainable = False  # a frozen BN layer runs in inference mode whatever `training` says
    np.testing.assert_allclose(model(x, training=True), model(x, training=False), atol=1e-6)


def test_unfreeze_trains_everything_but_batch_normalisation():
    base = base_with_batch_norm()
    base.trainable = False
    model = with_head(base)
    assert unfreeze(base) == 1
    assert base.trainable and base.get_layer("conv").trainable
    assert not base.get_layer("bn").trainable
    bn, conv = base.get_layer("bn"), base.get_layer("conv")
    before = [v.numpy() for v in (bn.moving_mean, bn.moving_variance, bn.gamma, conv.kernel)]
    x = np.random.default_rng(1).normal(2.0, 1.0, (16, 6, 6, 1)).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, np.arange(16) % 2, epochs=3, verbose=0)
    after = [v.numpy() for v in (bn.moving_mean, bn.moving_variance, bn.gamma, conv.kernel)]
    for unchanged, changed in zip(before[:3], after[:3], strict=True):
        np.testing.assert_array_equal(unchanged, changed)
    assert not np.allclose(before[3], after[3])  # the convolution did train


def test_unfreeze_everything_and_nested_models():
    inner = base_with_batch_norm()
    inputs = keras.Input((6, 6, 1))
    outer = keras.Model(inputs, inner(inputs))
    outer.trainable = False
    assert unfreeze(outer) == 1 and not inner.get_layer("bn").trainable
    assert unfreeze(outer, keep_batch_norm_frozen=False) == 0
    assert inner.get_layer("bn").trainable
    with pytest.raises(ValueError, match="base must be a keras.Model"):
        unfreeze(keras.layers.Dense(2))
    with pytest.raises(ValueError, match="keep_batch_norm_frozen must be"):
        unfreeze(outer, keep_batch_norm_frozen="yes")


def test_gradient_times_input_of_a_linear_model_sums_to_its_score():
    inputs = keras.Input((3, 3, 2))
    linear = keras.Model(inputs, keras.layers.Dense(2, use_bias=False)(
        keras.layers.Flatten()(inputs)))
    weights = np.random.default_rng(0).normal(size=(18, 2)).astype("float32")
    linear.set_weights([weights])
    x = np.random.default_rng(1).normal(size=(4, 3, 3, 2)).astype("float32")
    attribution = gradient_times_input(linear, x, class_index=1)
    assert attribution.shape == (4, 3, 3)
    np.testing.assert_allclose(attribution, (x * weights[:, 1].reshape(3, 3, 2)).sum(axis=-1),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(attribution.sum(axis=(1, 2)), linear(x).numpy()[:, 1], rtol=1e-4)


# --- the deletion test ---------------------------------------------------------------------------

def test_erase_top_pixels_by_hand():
    images = np.arange(1, 10, dtype="float32").reshape(1, 3, 3)
    scores = np.array([[[0, 5, 1], [9, 2, 3], [4, 8, 7]]], dtype=float)
    np.testing.assert_array_equal(erase_top_pixels(images, scores, 2)[0],
                                  [[1, 2, 3], [0, 5, 6], [7, 0, 9]])
    only_top_row = np.zeros((1, 3, 3), bool)
    only_top_row[0, 0] = True
    np.testing.assert_array_equal(erase_top_pixels(images, scores, 1, only_top_row)[0],
                                  [[1, 0, 3], [4, 5, 6], [7, 8, 9]])
    with_channel = erase_top_pixels(images[..., None], scores, 3)
    assert with_channel.shape == (1, 3, 3, 1) and (with_channel == 0).sum() == 3
    np.testing.assert_array_equal(images[0, 1], [4, 5, 6])  # the input is not changed


def test_erase_top_pixels_errors():
    images, scores = np.ones((2, 3, 3)), np.ones((2, 3, 3))
    with pytest.raises(ValueError, match="images must be"):
        erase_top_pixels(np.ones((2, 3, 3, 3)), scores, 1)
    with pytest.raises(ValueError, match="scores must have shape"):
        erase_top_pixels(images, np.ones((2, 9)), 1)
    with pytest.raises(ValueError, match="count must be"):
        erase_top_pixels(images, scores, 0)
    with pytest.raises(ValueError, match="boolean mask"):
        erase_top_pixels(images, scores, 1, candidates=np.ones((2, 3, 3)))
    one_each = np.zeros((2, 3, 3), bool)
    one_each[:, 0, 0] = True
    with pytest.raises(ValueError, match="fewer than count=2"):
        erase_top_pixels(images, scores, 2, candidates=one_each)


@pytest.mark.parametrize("function", [vgg_block, residual_block, inception_module,
                                      separable_block, layer_costs, count_costs,
                                      imagenet_application, saliency_map, grad_cam,
                                      fresh_optimizer_state, restart, unfreeze,
                                      erase_top_pixels, gradient_times_input])
def test_every_public_function_names_its_chapter(function):
    assert "Taught in chapter 9." in " ".join(function.__doc__.split())
