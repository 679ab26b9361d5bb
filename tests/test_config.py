"""Settings are validated once, with messages that name the variable."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from archive.config import Settings
from archive.errors import ConfigError


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"ARCHIVE_DATA_DIR": str(tmp_path / "data"), **values}


def test_defaults_are_a_working_local_archive(tmp_path: Path) -> None:
    settings = Settings.from_env(env(tmp_path))
    assert settings.embedded
    assert settings.s3_bucket == "archive"
    assert settings.base_url == "http://127.0.0.1:8000"
    assert settings.max_upload_mb == 4096
    assert len(settings.secret_key) >= 32
    assert Settings.from_env(env(tmp_path)).secret_key == settings.secret_key  # kept


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ARCHIVE_S3_ENDPOINT": "not a url"}, "ARCHIVE_S3_ENDPOINT 'not a url' is not an http"),
        ({"ARCHIVE_BASE_URL": "ftp://x"}, "ARCHIVE_BASE_URL 'ftp://x' is not an http"),
        ({"ARCHIVE_MEDIA_URL": "cdn.example.org"}, "ARCHIVE_MEDIA_URL"),
        ({"ARCHIVE_S3_BUCKET": "Bad_Bucket"}, "ARCHIVE_S3_BUCKET 'Bad_Bucket' is not a valid"),
        ({"ARCHIVE_MAX_UPLOAD_MB": "lots"}, "ARCHIVE_MAX_UPLOAD_MB must be a whole number"),
        ({"ARCHIVE_MAX_UPLOAD_MB": "0"}, "ARCHIVE_MAX_UPLOAD_MB must be positive"),
        ({"ARCHIVE_BASE_URL": "https://archive.example.org", "ARCHIVE_SECRET_KEY": "change-me"},
         "ARCHIVE_SECRET_KEY must be set"),
    ],
)
def test_bad_settings_name_the_variable(tmp_path: Path, values: dict[str, str],
                                        message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env(tmp_path, **values))


def test_unwritable_data_dir_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"ARCHIVE_DATA_DIR .* is not a writable folder"):
        Settings.from_env({"ARCHIVE_DATA_DIR": str(blocker / "sub")})


def test_workers_starting_together_all_accept_the_data_dir(tmp_path: Path) -> None:
    """Each checks the folder is writable with a file of its own (a shared probe name let
    one worker remove another's probe, and that worker refuse to start), and all of them
    sign sessions with the one local key (never a half-written one)."""
    def start(_: int) -> tuple[Path, str]:
        settings = Settings.from_env(env(tmp_path))
        return settings.data_dir, settings.secret_key

    with ThreadPoolExecutor(16) as pool:
        started = set(pool.map(start, range(400)))
    ((folder, key),) = started
    assert folder == (tmp_path / "data").resolve() and len(key) >= 32
    assert [p.name for p in folder.iterdir()] == ["secret_key"]
    assert (folder / "secret_key").stat().st_mode & 0o777 == 0o600


def test_https_with_a_real_secret_is_accepted(tmp_path: Path) -> None:
    settings = Settings.from_env(env(tmp_path, ARCHIVE_BASE_URL="https://archive.example.org/",
                                     ARCHIVE_SECRET_KEY="x" * 40))
    assert settings.base_url == "https://archive.example.org"
    assert settings.secure_cookies


def test_toml_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "archive.toml"
    config.write_text('s3_bucket = "from-toml"\nsite_title = "Trust Archive"\n')
    settings = Settings.from_env(env(tmp_path, ARCHIVE_CONFIG=str(config),
                                     ARCHIVE_SITE_TITLE="From env"))
    assert (settings.s3_bucket, settings.site_title) == ("from-toml", "From env")


def test_max_duration_defaults_to_a_day_and_must_be_positive(tmp_path: Path) -> None:
    assert Settings.from_env(env(tmp_path)).max_duration_h == 24
    assert Settings.from_env(env(tmp_path, ARCHIVE_MAX_DURATION_H="1.5")).max_duration_h == 1.5
    for bad, message in (("0", "must be positive"), ("-3", "must be positive"),
                         ("a day", "must be a number"), ("nan", "must be a number"),
                         ("inf", "must be a number")):
        with pytest.raises(ConfigError, match=f"ARCHIVE_MAX_DURATION_H {message}"):
            Settings.from_env(env(tmp_path, ARCHIVE_MAX_DURATION_H=bad))
