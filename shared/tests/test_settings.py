from cohort_shared.settings import CommonSettings
from pydantic import SecretStr


def test_reads_the_spec_environment_names(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:1")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@r:2/0")
    monkeypatch.setenv("TOPIC_PREFIX", "p.")
    monkeypatch.setenv("ADMIN_TOKEN", "s3cret")
    settings = CommonSettings()
    assert settings.kafka_bootstrap_servers == "k:1"
    assert settings.topics.cohort_changes == "p.cohort.changes"
    assert settings.admin_token == SecretStr("s3cret")


def test_secrets_never_print(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@r:2/0")
    monkeypatch.setenv("ADMIN_TOKEN", "s3cret")
    settings = CommonSettings()
    for text in (str(settings), repr(settings), str(settings.masked())):
        assert "hunter2" not in text and "s3cret" not in text


def test_no_hidden_default_for_the_operator_token(monkeypatch):
    monkeypatch.delenv("ADMIN_TOKEN", raising=False)
    assert CommonSettings().admin_token is None


def test_frozen():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        CommonSettings().topic_prefix = "x"
