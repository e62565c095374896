"""The plugin layer: built-in provider presets, hooks answered by plugins, entry-point loading."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from connectors import discovery, plugins
from connectors.discovery import DiscoveryContext
from connectors.plugins import hookimpl
from connectors.presets import DiscoveredSettings, Endpoint, ServicePreset, find_by_mx
from connectors.settings import Protocol, Security, ServerSettings

EXAMPLE_DIR = Path(__file__).parent / "fixtures" / "example_plugin"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_plugin_manager():
    """Each test starts from and leaves behind a manager with only what is installed."""
    plugins.reset_plugin_manager()
    yield
    plugins.reset_plugin_manager()


def preset(key):
    found = plugins.service_preset(key)
    assert found is not None, f"no preset {key!r} in {[p.key for p in plugins.service_presets()]}"
    return found


def endpoints(p):
    return {
        name: (e.host, e.port, e.security) if e else None
        for name, e in (("imap", p.imap), ("smtp", p.smtp), ("pop3", p.pop3))
    }


# --- built-in presets -------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, imap, smtp, pop3",
    [
        (
            "gmail",
            ("imap.gmail.com", 993, Security.TLS),
            ("smtp.gmail.com", 465, Security.TLS),
            ("pop.gmail.com", 995, Security.TLS),
        ),
        (
            "office365",
            ("outlook.office365.com", 993, Security.TLS),
            ("smtp.office365.com", 587, Security.STARTTLS),
            ("outlook.office365.com", 995, Security.TLS),
        ),
        (
            "outlook",
            ("outlook.office365.com", 993, Security.TLS),
            ("smtp-mail.outlook.com", 587, Security.STARTTLS),
            ("outlook.office365.com", 995, Security.TLS),
        ),
        (
            "yahoo",
            ("imap.mail.yahoo.com", 993, Security.TLS),
            ("smtp.mail.yahoo.com", 465, Security.TLS),
            ("pop.mail.yahoo.com", 995, Security.TLS),
        ),
        (
            "icloud",
            ("imap.mail.me.com", 993, Security.TLS),
            ("smtp.mail.me.com", 587, Security.STARTTLS),
            None,
        ),
        (
            "aruba",
            ("imaps.aruba.it", 993, Security.TLS),
            ("smtps.aruba.it", 465, Security.TLS),
            ("pop3s.aruba.it", 995, Security.TLS),
        ),
        (
            "aruba_pec",
            ("imaps.pec.aruba.it", 993, Security.TLS),
            ("smtps.pec.aruba.it", 465, Security.TLS),
            ("pop3s.pec.aruba.it", 995, Security.TLS),
        ),
        (
            "legalmail",
            ("mbox.cert.legalmail.it", 993, Security.TLS),
            ("sendm.cert.legalmail.it", 465, Security.TLS),
            ("mbox.cert.legalmail.it", 995, Security.TLS),
        ),
    ],
)
def test_builtin_preset_has_the_providers_real_servers(key, imap, smtp, pop3):
    assert endpoints(preset(key)) == {"imap": imap, "smtp": smtp, "pop3": pop3}


def test_builtin_presets_are_listed_once_in_builtin_order():
    keys = [p.key for p in plugins.service_presets()]
    assert keys == ["gmail", "office365", "outlook", "yahoo", "icloud", "aruba", "aruba_pec", "legalmail"]


def test_gmail_preset_files_sent_copy_and_offers_oauth2_with_google_endpoints():
    gmail = preset("gmail")
    assert gmail.files_sent_copy is True
    assert gmail.oauth2.authorize_url == "https://accounts.google.com/o/oauth2/v2/auth"
    assert gmail.oauth2.token_url == "https://oauth2.googleapis.com/token"
    assert gmail.oauth2.scopes == ("https://mail.google.com/",)
    assert any("app password" in h and "30 May 2022" in h for h in gmail.hints)
    assert any("Spaces" in h for h in gmail.hints)
    assert not any(p.files_sent_copy for p in plugins.service_presets() if p.key != "gmail")


def test_office365_oauth2_endpoints_take_a_tenant():
    o365 = preset("office365").oauth2
    assert "https://outlook.office.com/IMAP.AccessAsUser.All" in o365.scopes
    assert "https://outlook.office.com/SMTP.Send" in o365.scopes
    assert "https://outlook.office.com/POP.AccessAsUser.All" in o365.scopes
    assert "offline_access" in o365.scopes
    contoso = o365.for_tenant("contoso.onmicrosoft.com")
    assert (
        contoso.authorize_url
        == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize"
    )
    assert contoso.token_url == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"


def test_preset_as_dict_is_json_with_security_as_text():
    d = json.loads(json.dumps(preset("office365").as_dict()))
    assert d["smtp"] == {"host": "smtp.office365.com", "port": 587, "security": "starttls"}
    assert d["oauth2"]["scopes"][-1] == "offline_access"
    assert d["key"] == "office365" and isinstance(d["hints"], list)


def test_endpoint_accepts_security_as_text_and_gives_server_settings():
    endpoint = Endpoint("IMAP.Example.NET", 993, "tls")
    assert endpoint.security is Security.TLS and endpoint.host == "imap.example.net"
    settings = endpoint.server_settings("imap", timeout=5.0)
    assert (settings.protocol, settings.port, settings.timeout) == (Protocol.IMAP, 993, 5.0)


def test_preset_with_a_bad_key_or_oauth2_without_endpoints_is_refused():
    imap, smtp = Endpoint("imap.x.org", 993, Security.TLS), Endpoint("smtp.x.org", 465, Security.TLS)
    with pytest.raises(ValueError):
        ServicePreset(key="Not A Slug", name="X", imap=imap, smtp=smtp)
    with pytest.raises(ValueError):
        ServicePreset(key="x", name="X", imap=imap, smtp=smtp, auth_methods=("oauth2",))


# --- discovery ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email, key",
    [
        ("someone@gmail.com", "gmail"),
        ("someone@googlemail.com", "gmail"),
        ("someone@hotmail.com", "outlook"),
        ("someone@live.com", "outlook"),
        ("someone@yahoo.it", "yahoo"),
        ("someone@me.com", "icloud"),
        ("someone@aruba.it", "aruba"),
        ("Someone@PEC.it", "aruba_pec"),
        ("someone@legalmail.it", "legalmail"),
        ("admin@contoso.onmicrosoft.com", "office365"),
    ],
)
def test_discovery_matches_the_address_domain_to_a_preset(email, key):
    found = discovery.discover_settings(email)
    assert found.service_key == key and found.source == "preset"
    assert found.imap == preset(key).imap and found.smtp == preset(key).smtp


def test_discovery_prefills_the_address_as_user_name_except_for_legalmail_user_ids():
    assert discovery.discover_settings("mario@gmail.com").username_hint == "mario@gmail.com"
    assert discovery.discover_settings("studio@legalmail.it").username_hint is None


def test_discovery_of_an_unknown_domain_finds_nothing_without_network():
    # Only the presets by domain: the MX, autoconfig, SRV and probing sources are
    # tested against local servers in tests/test_discovery.py.
    offline = DiscoveryContext.offline()
    assert discovery.discover_settings("someone@unknown-domain.example", context=offline) is None
    assert discovery.discover_settings("not an address", context=offline) is None


def test_registered_discovery_plugin_answers_for_domains_no_preset_claims():
    class Discovery:
        @hookimpl
        def mailroom_discover_settings(self, email, domain, timeout):
            if domain == "corp.example":
                return DiscoveredSettings(
                    imap=Endpoint("mail.corp.example", 993, Security.TLS),
                    smtp=Endpoint("mail.corp.example", 465, Security.TLS),
                    source="test",
                    username_hint=email.partition("@")[0],
                )
            return DiscoveredSettings(imap=None, smtp=None, source="wrong")

    plugins.get_plugin_manager().register(Discovery())
    assert discovery.discover_settings("ann@corp.example").username_hint == "ann"
    # Known presets still answer first: they are exact and need no network.
    assert discovery.discover_settings("ann@gmail.com").source == "preset"


def test_mx_host_maps_to_the_most_specific_preset():
    presets = plugins.service_presets()
    assert find_by_mx(presets, "mx.pec.aruba.it").key == "aruba_pec"
    assert find_by_mx(presets, "alt1.aspmx.l.google.com.").key == "gmail"
    assert find_by_mx(presets, "contoso-com.mail.protection.outlook.com").key == "office365"
    assert find_by_mx(presets, "hotmail-com.olc.protection.outlook.com").key == "outlook"
    assert find_by_mx(presets, "mx.cert.legalmail.it").key == "legalmail"
    assert find_by_mx(presets, "mx.example.org") is None


# --- plugins registered in the test -----------------------------------------------------------


class AcmePlugin:
    PRESET = ServicePreset(
        key="acme",
        name="Acme Mail",
        imap=Endpoint("imap.acme.test", 993, Security.TLS),
        smtp=Endpoint("smtp.acme.test", 465, Security.TLS),
        domains=("acme.test",),
    )

    @hookimpl
    def mailroom_service_presets(self):
        return [self.PRESET]

    @hookimpl
    def mailroom_diagnosis_hints(self, error_class, protocol, service_key):
        if service_key == "acme" and error_class == "auth":
            return [f"Acme wants the {protocol.upper()} password from the Acme portal."]
        return []


def test_registered_plugin_contributes_a_preset():
    plugins.get_plugin_manager().register(AcmePlugin())
    presets = plugins.service_presets()
    assert presets[-1] == AcmePlugin.PRESET
    assert discovery.discover_settings("bob@acme.test").service_key == "acme"


def test_registered_plugin_contributes_a_diagnosis_hint():
    plugins.get_plugin_manager().register(AcmePlugin())
    assert plugins.diagnosis_hints("auth", Protocol.SMTP, "acme") == [
        "Acme wants the SMTP password from the Acme portal."
    ]
    assert plugins.diagnosis_hints("timeout", "smtp", "acme") == []


def test_plugin_overrides_a_builtin_preset_by_key_in_place():
    corp_gmail = ServicePreset(
        key="gmail",
        name="Gmail via corporate relay",
        imap=Endpoint("imap.gmail.com", 993, Security.TLS),
        smtp=Endpoint("relay.corp.test", 587, Security.STARTTLS),
    )

    class Override:
        @hookimpl
        def mailroom_service_presets(self):
            return corp_gmail  # a single preset is accepted too

    plugins.get_plugin_manager().register(Override())
    presets = plugins.service_presets()
    assert presets[0] is corp_gmail
    assert [p.key for p in presets].count("gmail") == 1


def test_protocol_clients_from_a_later_plugin_replace_earlier_ones():
    class First:
        @hookimpl
        def mailroom_protocol_clients(self):
            return {"imap": int, "pop3": float}

    class Second:
        @hookimpl
        def mailroom_protocol_clients(self):
            return {"imap": str}

    pm = plugins.get_plugin_manager()
    pm.register(First())
    pm.register(Second())
    from connectors.smtp import SmtpClient

    # The built-in SMTP client stays: only the protocols the plugins name are replaced.
    assert plugins.protocol_clients() == {"imap": str, "pop3": float, "smtp": SmtpClient}


def test_messages_synced_reaches_listeners_and_a_failing_one_does_not_raise():
    seen = []

    class Listener:
        @hookimpl
        def mailroom_messages_synced(self, account_id, folder, uids):
            seen.append((account_id, folder, uids))

    class Broken:
        @hookimpl(trylast=True)
        def mailroom_messages_synced(self):
            raise RuntimeError("plugin bug")

    pm = plugins.get_plugin_manager()
    pm.register(Listener())
    plugins.messages_synced(7, "INBOX", [41, 42])
    assert seen == [(7, "INBOX", [41, 42])]
    pm.register(Broken())
    plugins.messages_synced(7, "INBOX", [43])  # logged, not raised


# --- diagnosis hints of built-ins ---------------------------------------------------------------


def test_gmail_auth_failure_hints_at_app_password_even_without_the_preset():
    by_host = ServerSettings(protocol=Protocol.IMAP, host="imap.gmail.com", port=993)
    for hints in (
        plugins.diagnosis_hints("auth", "imap", "gmail"),
        plugins.diagnosis_hints("auth", "imap", None, by_host),
    ):
        assert len(hints) == 1 and "app password" in hints[0]


def test_office365_timeout_on_port_443_hints_at_993():
    settings = ServerSettings(protocol=Protocol.IMAP, host="outlook.office365.com", port=443)
    hints = plugins.diagnosis_hints("timeout", "imap", "office365", settings)
    assert any("993" in h and "443" in h for h in hints)
    ok_port = ServerSettings(protocol=Protocol.IMAP, host="outlook.office365.com", port=993)
    assert plugins.diagnosis_hints("timeout", "imap", "office365", ok_port) == []


@pytest.mark.parametrize("key, words", [("yahoo", "app password"), ("icloud", "app-specific password")])
def test_yahoo_and_icloud_auth_failures_hint_at_app_passwords(key, words):
    assert any(words in h for h in plugins.diagnosis_hints("auth", "imap", key))


def test_no_hints_for_an_unknown_server():
    settings = ServerSettings(protocol=Protocol.IMAP, host="mail.example.org", port=993)
    assert plugins.diagnosis_hints("auth", "imap", None, settings) == []


# --- folder roles --------------------------------------------------------------------------------


def test_gmail_folder_roles_including_localized_and_google_mail_names():
    folders = [
        "INBOX",
        "[Gmail]/Posta inviata",
        "[Gmail]/Bozze",
        "[Gmail]/Cestino",
        "[Gmail]/Tutti i messaggi",
        "[Gmail]/Spam",
        "[Google Mail]/Sent Mail",
        "[Google Mail]/Bin",
        "[Gmail]/Starred",
        "Receipts",
    ]
    assert plugins.folder_role_hints("gmail", folders) == {
        "INBOX": "inbox",
        "[Gmail]/Posta inviata": "sent",
        "[Gmail]/Bozze": "drafts",
        "[Gmail]/Cestino": "trash",
        "[Gmail]/Tutti i messaggi": "archive",
        "[Gmail]/Spam": "spam",
        "[Google Mail]/Sent Mail": "sent",
        "[Google Mail]/Bin": "trash",
    }


def test_generic_folder_roles_for_italian_names_and_inbox_prefixed_folders():
    folders = ["INBOX", "Posta inviata", "Bozze", "Posta indesiderata", "Cestino", "Archivio", "Fatture"]
    assert plugins.folder_role_hints(None, folders) == {
        "INBOX": "inbox",
        "Posta inviata": "sent",
        "Bozze": "drafts",
        "Posta indesiderata": "spam",
        "Cestino": "trash",
        "Archivio": "archive",
    }
    assert plugins.folder_role_hints(
        None, ["INBOX.Sent Items", "INBOX/Papierkorb", "Entwürfe", "Éléments envoyés"]
    ) == {
        "INBOX.Sent Items": "sent",
        "INBOX/Papierkorb": "trash",
        "Entwürfe": "drafts",
        "Éléments envoyés": "sent",
    }


def test_registered_plugin_folder_roles_win_and_cannot_invent_folders_or_roles():
    class Roles:
        @hookimpl
        def mailroom_folder_role_hints(self, service_key, folders):
            return {"Archivio": "trash", "Not listed": "sent", "Fatture": "invoices"}

    plugins.get_plugin_manager().register(Roles())
    roles = plugins.folder_role_hints(None, ["Archivio", "Fatture"])
    assert roles == {"Archivio": "trash"}


# --- loading and describing ----------------------------------------------------------------------


def test_describe_plugins_lists_builtins_with_their_hooks():
    described = {d["name"]: d for d in plugins.describe_plugins()}
    assert set(plugins.DEFAULT_PLUGINS) <= set(described)
    gmail = described["plugins.gmail"]
    assert gmail["builtin"] is True and gmail["version"].startswith("built-in")
    assert gmail["hooks"] == [
        "mailroom_connection_limit",
        "mailroom_diagnosis_hints",
        "mailroom_folder_role_hints",
        "mailroom_server_saves_sent",
        "mailroom_service_presets",
    ]
    assert described["plugins.presets_discovery"]["hooks"] == ["mailroom_discover_settings"]


def _write_dist_info(site: Path, name: str, version: str, entry_points: dict[str, str]) -> None:
    """What ``pip install`` would leave behind, minus the copying: enough for importlib.metadata."""
    dist_info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{ep} = {target}\n" for ep, target in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[mailroom]\n{lines}")


@pytest.fixture
def site_dir(tmp_path, monkeypatch):
    """A fresh sys.path entry for fake installed distributions; their modules are forgotten after."""
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("mailroom_"):
            del sys.modules[name]


def test_entry_point_plugin_is_loaded_with_its_preset_and_version(site_dir, monkeypatch):
    project = tomllib.loads((EXAMPLE_DIR / "pyproject.toml").read_text())["project"]
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    _write_dist_info(site_dir, project["name"], project["version"], project["entry-points"]["mailroom"])
    plugins.reset_plugin_manager()

    assert preset("example").imap.host == "imap.example.net"
    assert plugins.service_presets()[-1].key == "example"
    assert plugins.diagnosis_hints("auth", "imap", "example") == [
        "Example Mail wants the password from https://example.net/app-passwords."
    ]
    described = {d["name"]: d for d in plugins.describe_plugins()}
    example = described["mailroom-example-plugin"]
    assert example == {
        "name": "mailroom-example-plugin",
        "version": "0.3.0",
        "builtin": False,
        "module": "mailroom_example_plugin",
        "hooks": ["mailroom_diagnosis_hints", "mailroom_service_presets"],
    }


def test_entry_point_plugin_that_fails_to_import_is_skipped_and_reported(site_dir):
    (site_dir / "mailroom_broken_plugin.py").write_text("raise RuntimeError('missing dependency')\n")
    _write_dist_info(site_dir, "mailroom-broken-plugin", "1.0", {"broken": "mailroom_broken_plugin"})
    (site_dir / "mailroom_fine_plugin.py").write_text(
        textwrap.dedent(
            """
            from connectors.plugins import hookimpl

            @hookimpl
            def mailroom_diagnosis_hints():
                return ["fine plugin loaded"]
            """
        )
    )
    _write_dist_info(site_dir, "mailroom-fine-plugin", "2.0", {"fine": "mailroom_fine_plugin"})
    plugins.reset_plugin_manager()

    assert "gmail" in [p.key for p in plugins.service_presets()]
    assert "fine plugin loaded" in plugins.diagnosis_hints("dns", "imap")
    errors = plugins.plugin_load_errors()
    assert errors == [{"name": "broken", "error": "RuntimeError: missing dependency"}]
    assert "mailroom-broken-plugin" not in {d["name"] for d in plugins.describe_plugins()}


def test_disabled_plugins_are_not_loaded(monkeypatch):
    monkeypatch.setenv("MAILROOM_DISABLE_PLUGINS", "plugins.yahoo, plugins.icloud")
    plugins.reset_plugin_manager()
    keys = [p.key for p in plugins.service_presets()]
    assert "yahoo" not in keys and "icloud" not in keys and "gmail" in keys
    assert "plugins.yahoo" not in {d["name"] for d in plugins.describe_plugins()}


def test_plugin_layer_imports_without_flask():
    code = (
        "import sys, importlib, connectors.plugins as p;"
        "[importlib.import_module(m) for m in p.DEFAULT_PLUGINS]; p.service_presets();"
        "sys.exit('flask' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
