"""Configuration read from the environment (what an operator sets; tests pass overrides instead)."""

from webapp.config import from_environment


def test_company_ca_and_dns_servers_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MAILROOM_CA_FILE", "/etc/ssl/company-ca.pem")
    monkeypatch.setenv("MAILROOM_DNS_SERVERS", " 10.0.0.53, 10.0.1.53 ,")
    config = from_environment(str(tmp_path))
    assert config["MAIL_CA_FILE"] == config["DISCOVERY_CA_FILE"] == "/etc/ssl/company-ca.pem"
    assert config["DISCOVERY_NAMESERVERS"] == ["10.0.0.53", "10.0.1.53"]


def test_unset_variables_leave_the_defaults(monkeypatch, tmp_path):
    for name in ("MAILROOM_CA_FILE", "MAILROOM_DNS_SERVERS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    config = from_environment(str(tmp_path))
    assert config["MAIL_CA_FILE"] is None and config["DISCOVERY_NAMESERVERS"] is None
    assert config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///" + str(tmp_path / "mailroom.sqlite3")
