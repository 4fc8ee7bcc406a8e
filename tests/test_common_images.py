"""One image decoder for every command: 16-bit, gray, alpha and palette images become the same RGB."""

import numpy as np
import pytest
from PIL import Image

from keras_efficientnets import training
from keras_efficientnets._common import images


@pytest.fixture
def pictures(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(gray).save(tmp_path / "gray8.png")
    # The same gray image at 16 bits: each 8-bit value v becomes v * 257 (65535 / 255).
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "gray16.png")
    Image.fromarray(np.dstack([rgb, np.full((40, 60), 7, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "palette.png")
    return tmp_path, rgb, gray


def test_a_16_bit_png_is_scaled_not_clipped_to_white(pictures):
    folder, _, gray = pictures
    assert Image.open(folder / "gray16.png").mode == "I;16"
    sixteen = images.load_image(folder / "gray16.png")
    np.testing.assert_allclose(sixteen, np.repeat(gray[..., None], 3, axis=-1), atol=1e-3)
    np.testing.assert_allclose(sixteen, images.load_image(folder / "gray8.png"), atol=1e-3)
    assert sixteen.max() < 255.5 and sixteen.std() > 50  # not a white image


def test_alpha_and_palette_images_decode_to_their_rgb(pictures):
    folder, rgb, _ = pictures
    np.testing.assert_array_equal(images.load_image(folder / "rgba.png"), rgb)
    assert images.load_image(folder / "palette.png").shape == (40, 60, 3)


def test_center_crop_keeps_the_middle_square(pictures):
    folder, rgb, _ = pictures
    cropped = images.load_image(folder / "rgb.png", size=40)  # 40 x 60: the middle 40 columns
    np.testing.assert_allclose(cropped, rgb[:, 10:50], atol=1.0)


def test_a_crop_fraction_keeps_that_share_of_the_shorter_side(pictures):
    folder, rgb, _ = pictures
    # Half of 40 rows: the middle 20 x 20 pixels, kept as they are at size 20.
    half = images.load_image(folder / "rgb.png", size=20, crop_fraction=0.5, interpolation="nearest")
    np.testing.assert_array_equal(half, rgb[10:30, 20:40])
    # The reference's padding of 32 at size 224 is the fraction 224 / 256 (timm's crop_pct 0.875).
    np.testing.assert_array_equal(
        images.load_image(folder / "rgb.png", size=224, crop_padding=32),
        images.load_image(folder / "rgb.png", size=224, crop_fraction=0.875),
    )
    # The resampling is the one asked for.
    bilinear = images.load_image(folder / "rgb.png", size=13, interpolation="bilinear")
    assert np.abs(bilinear - images.load_image(folder / "rgb.png", size=13)).max() > 1


def test_training_decodes_as_predict_does(pictures, tmp_path):
    folder, _, _ = pictures
    paths = [str(folder / name) for name in ("gray16.png", "rgb.png")]
    dataset = training.image_dataset(paths, [0, 1], image_size=32, batch_size=2)
    batch, labels = next(iter(dataset))
    for image, path in zip(batch.numpy(), paths, strict=True):
        np.testing.assert_array_equal(image, images.load_image(path, size=32))
    assert labels.numpy().tolist() == [0, 1]


def test_check_images_names_the_first_bad_file(pictures):
    folder, _, _ = pictures
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(images.ImageError, match="broken.jpg"):
        images.check_images([folder / "rgb.png", folder / "broken.jpg", folder / "gray8.png"])


def test_image_folder_splits_reproducibly(tmp_path):
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for i in range(5):
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / name / f"{i}.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    first = training.split_image_folder(tmp_path, 0.2, seed=3)
    assert first == training.split_image_folder(tmp_path, 0.2, seed=3)
    assert first.class_names == ["cat", "dog"]
    assert (len(first.train_paths), len(first.validation_paths)) == (8, 2)
    assert sorted(first.train_paths + first.validation_paths) == sorted(
        str(tmp_path / n / f"{i}.png") for n in ("cat", "dog") for i in range(5)
    )
    assert first.describe() == "Found 10 images in 2 classes: 8 for training, 2 for validation."


def test_a_photo_is_turned_upright_by_its_exif_orientation(tmp_path):
    # A phone stores a portrait photo 80 wide and 40 high, with Orientation 6: turn it 90 degrees
    # clockwise to view. The left column as stored (red) is then the top row.
    stored = np.zeros((40, 80, 3), np.uint8)
    stored[:, :8] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "portrait.jpg", exif=exif, quality=95)
    upright = images.load_image(tmp_path / "portrait.jpg")
    assert upright.shape == (80, 40, 3)
    assert upright[:4, :, 0].mean() > 200 and upright[-4:, :, 0].mean() < 50


def test_a_float_image_with_a_nan_pixel_is_refused(tmp_path):
    values = np.full((8, 8), 0.5, np.float32)
    values[3, 3] = np.nan
    Image.fromarray(values, mode="F").save(tmp_path / "nan.tiff")
    with pytest.raises(images.ImageError, match=r"nan.tiff holds NaN"):
        images.load_image(tmp_path / "nan.tiff")


def test_hidden_folders_are_no_classes_and_the_summary_says_so(tmp_path):
    for name in ("cat", "dog", ".git", ".ipynb_checkpoints"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / name / "a.png")
    folder = training.split_image_folder(tmp_path, validation_split=0.5)
    assert folder.class_names == ["cat", "dog"]
    assert "Skipped hidden folders: .git, .ipynb_checkpoints." in folder.describe()
