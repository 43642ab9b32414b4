"""The public library API, the error tree and settings."""

from __future__ import annotations

import inspect
import stat
from pathlib import Path

import pytest

import prep
from prep import errors
from prep.configfile import write_config
from prep.settings import load_settings


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in dir(prep) if not name.startswith("_")}
    modules = {name for name, value in vars(prep).items() if inspect.ismodule(value)}
    assert list(prep.__all__) == sorted(prep.__all__, key=lambda n: (not n.isupper(), n))
    assert set(prep.__all__) == public - modules - {"annotations"}


def test_every_public_name_resolves() -> None:
    for name in prep.__all__:
        assert getattr(prep, name) is not None, name


def test_public_functions_survive_importing_every_layer() -> None:
    import prep.core.plan  # noqa: F401  (binding a subpackage must not hide a public function)
    import prep.media.prepare  # noqa: F401

    assert callable(prep.plan) and not inspect.ismodule(prep.plan)
    assert callable(prep.prepare) and not inspect.ismodule(prep.prepare)


EXIT_CODES = {
    errors.PrepError: 1, errors.UsageError: 2, errors.MediaError: 3, errors.FfmpegError: 3,
    errors.ToolMissingError: 6, errors.ApiError: 6, errors.AuthError: 4, errors.QuotaError: 5,
    errors.RequestRejected: 3, errors.RateLimitError: 6, errors.ServerError: 6,
    errors.NetworkError: 6, errors.ServiceUnreachable: 6, errors.OutcomeUnknownError: 6,
    errors.UploadRejected: 6,
    errors.TaskFailedError: 7, errors.TaskNotFoundError: 3, errors.TaskTimeoutError: 6,
    errors.Interrupted: 130,
    errors.ManifestError: 2,
    errors.FolderBusyError: 8,
    errors.JobError: 1,  # each instance carries its job's own code
}


def test_every_error_class_has_its_exit_code() -> None:
    classes = {c for c in vars(errors).values() if inspect.isclass(c) and issubclass(c, errors.PrepError)}
    assert classes == set(EXIT_CODES)
    for cls, code in EXIT_CODES.items():
        assert cls.exit_code == code, cls
        assert cls.__name__ in (errors.__doc__ or ""), f"{cls.__name__} missing from the drawn tree"


def test_api_error_carries_request_id() -> None:
    exc = errors.AuthError("Invalid or expired token", status=401, request_id="req-1")
    assert str(exc) == "Invalid or expired token (request id req-1)"


def test_library_estimate() -> None:
    est = prep.estimate(seconds=[7_000, 3_000], output_s=4, quality="720p")
    assert est.input_billed_ms == 5_000 and est.total_billed_ms == 9_000
    assert prep.core.billing.credits_text(est.credits_units) == "42.84"


def test_settings_precedence(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('base_url = "http://from-config"\nfiles_url = "http://files-config"\n'
                      'api_key = "k-config"\n')
    env = {"PREP_CONFIG": str(config), "EVOLINK_BASE_URL": "http://from-env/"}
    settings = load_settings({"files_url": "http://from-option"}, environ=env)
    assert settings.base_url == "http://from-env"
    assert settings.files_url == "http://from-option"
    assert settings.api_key == "k-config"
    assert "k-config" not in repr(settings) and "k-config" not in str(settings)


def test_bad_config_file_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("this is = = not toml")
    with pytest.raises(errors.UsageError, match="config file"):
        load_settings(environ={"PREP_CONFIG": str(config)})


def test_config_is_written_private(tmp_path: Path) -> None:
    path = write_config({"api_key": 'sk-"quoted"'}, tmp_path / "sub" / "config.toml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_settings(environ={"PREP_CONFIG": str(path)}).api_key == 'sk-"quoted"'
