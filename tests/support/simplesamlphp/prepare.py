#!/usr/bin/env python3
"""Configure a throwaway SimpleSAMLphp 1.19 IdP (Debian package) in a directory.

Usage:
    python3 prepare.py --dir DIR --port PORT --sp-entity-id URL --acs-url URL \
        [--sign-response yes|no] [--sign-assertion yes|no] [--sp-cert PEMFILE]
        [--validate-authnrequest yes|no] [--encrypt yes|no]

--sp-cert puts the SP's certificate in saml20-sp-remote (certData): it verifies signed
AuthnRequests (--validate-authnrequest yes refuses unsigned or badly signed ones) and is
the key assertions are encrypted to (--encrypt yes). SimpleSAMLphp 1.19 encrypts to a
certificate with rsa-oaep-mgf1p (SHA-1) key transport and AES-128-CBC content, always:
`sharedkey_algorithm` only applies to a pre-shared symmetric key, which the bridge does not
support.

Afterwards start the IdP with (cwd does not matter):

    SIMPLESAMLPHP_CONFIG_DIR=DIR/config PHP_CLI_SERVER_WORKERS=4 \
        php -S 127.0.0.1:PORT -t /usr/share/simplesamlphp/www

(no router script needed: php -S resolves /module.php/<module>/<page>.php
to module.php with PATH_INFO by itself).

The config is self-contained (it does NOT include /etc/simplesamlphp/config.php,
which pulls in /var/lib/simplesamlphp/secrets.inc.php, readable only by
root/www-data). Everything the IdP writes goes below DIR.

Python 3.11 stdlib only; needs the `openssl` CLI. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import quoteattr

SSP_ROOT = Path("/usr/share/simplesamlphp")

NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEFORMAT_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"

AUTHSOURCE = "example-userpass"

# username -> attributes (password is username + "pass").
# carol has no `groups` attribute at all (rather than an empty <saml:Attribute/>).
USERS: dict[str, dict[str, list[str]]] = {
    "alice": {
        "uid": ["alice-0001"],
        "email": ["alice@acme.test"],
        "displayName": ["Alice Anderson"],
        "groups": ["lf-admins", "ml-team"],
    },
    "bob": {
        "uid": ["bob-0002"],
        "email": ["Bob.Builder@ACME.test"],
        "displayName": ["Bob Builder"],
        "groups": ["ml-team"],
    },
    "carol": {
        "uid": ["carol-0003"],
        "email": ["carol@acme.test"],
        "displayName": ["Carol Chen"],
    },
    "mallory": {
        "uid": ["mallory-0004"],
        "email": ["mallory@evil.test"],
        "displayName": ["Mallory"],
        "groups": ["lf-admins"],
    },
}


class PrepareError(Exception):
    pass


# --------------------------------------------------------------------------- PHP helpers


def php_str(s: str) -> str:
    """A PHP single-quoted string literal."""
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def php_val(v, indent: int = 1) -> str:
    pad = "    " * indent
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return php_str(v)
    if isinstance(v, list):
        if not v:
            return "[]"
        inner = "".join(f"{pad}    {php_val(x, indent + 1)},\n" for x in v)
        return "[\n" + inner + pad + "]"
    if isinstance(v, dict):
        if not v:
            return "[]"
        inner = "".join(
            f"{pad}    {php_str(k) if isinstance(k, str) else k} => {php_val(x, indent + 1)},\n"
            for k, x in v.items()
        )
        return "[\n" + inner + pad + "]"
    raise TypeError(f"cannot render {type(v)} as PHP")


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- files


def config_php(d: Path, port: int) -> str:
    cfg = {
        "baseurlpath": f"http://127.0.0.1:{port}/",
        "certdir": f"{d}/cert/",
        "loggingdir": f"{d}/log/",
        "datadir": f"{d}/data/",
        "tempdir": f"{d}/tmp",
        "metadatadir": f"{d}/metadata/",
        "attributenamemapdir": f"{SSP_ROOT}/attributemap/",
        "technicalcontact_name": "Administrator",
        "technicalcontact_email": "na@example.org",  # SSP's "unset" marker: no ContactPerson
        "timezone": "UTC",
        "secretsalt": secrets.token_hex(24),
        "auth.adminpassword": secrets.token_urlsafe(18),
        "admin.protectindexpage": False,
        "admin.protectmetadata": False,
        "admin.checkforupdates": False,
        "trusted.url.domains": [f"127.0.0.1:{port}"],
        "enable.http_post": False,
        "assertion.allowed_clock_skew": 180,
        "debug": {"saml": False, "backtraces": True, "validatexml": False},
        "showerrors": True,
        "errorreporting": False,
        "logging.handler": "file",
        "logging.logfile": "simplesamlphp.log",
        "logging.processname": "simplesamlphp",
        "statistics.out": [],
        "proxy": None,
        "enable.saml20-idp": True,
        "enable.shib13-idp": False,
        "enable.adfs-idp": False,
        "module.enable": {"core": True, "saml": True, "admin": True, "exampleauth": True},
        "session.duration": 8 * 3600,
        "session.datastore.timeout": 4 * 3600,
        "session.state.timeout": 3600,
        # Cookies do not care about ports: these are also sent to an SP on
        # 127.0.0.1:<other port>, so keep them clear of the SP's `ssob_*`.
        "session.cookie.name": "SSPIdPSessionID",
        "session.cookie.lifetime": 0,
        "session.cookie.path": "/",
        "session.cookie.domain": None,
        "session.cookie.secure": False,  # plain http on loopback
        "session.cookie.samesite": None,
        "session.phpsession.cookiename": "SSPIdPPHPSESSID",
        "session.phpsession.savepath": f"{d}/sessions",
        "session.phpsession.httponly": True,
        "session.authtoken.cookiename": "SSPIdPAuthToken",
        "session.rememberme.enable": False,
        "language.available": ["en"],
        "language.default": "en",
        "language.parameter.setcookie": False,
        "language.cookie.name": "SSPIdPLanguage",
        "language.cookie.secure": False,
        "language.cookie.samesite": None,
        "theme.use": "default",
        "template.auto_reload": False,
        "production": True,
        "authproc.idp": {},
        "authproc.sp": {},
        "metadata.sources": [{"type": "flatfile"}],
        "metadata.sign.enable": False,
        "store.type": "phpsession",
    }
    return (
        "<?php\n"
        "// Generated by tests/support/simplesamlphp/prepare.py -- do not edit.\n"
        f"$config = {php_val(cfg, 0)};\n"
        "$config['logging.level'] = SimpleSAML\\Logger::DEBUG;\n"
    )


def authsources_php() -> str:
    src: dict = {0: "exampleauth:UserPass"}
    for user, attrs in USERS.items():
        src[f"{user}:{user}pass"] = attrs
    sources = {"admin": {0: "core:AdminPassword"}, AUTHSOURCE: src}
    return (
        "<?php\n"
        "// Generated by tests/support/simplesamlphp/prepare.py -- do not edit.\n"
        f"$config = {php_val(sources, 0)};\n"
    )


def idp_hosted_php(idp_entity: str, sign_response: bool, sign_assertion: bool) -> str:
    md = {
        "host": "__DEFAULT__",
        "privatekey": "idp.key",
        "certificate": "idp.crt",
        "auth": AUTHSOURCE,
        "signature.algorithm": RSA_SHA256,
        "NameIDFormat": NAMEID_PERSISTENT,
        "simplesaml.nameidattribute": "uid",
        "attributes.NameFormat": NAMEFORMAT_BASIC,
        "saml20.sign.response": sign_response,
        "saml20.sign.assertion": sign_assertion,
        "assertion.encryption": False,
        "authproc": {},
    }
    return (
        "<?php\n"
        "// Generated by tests/support/simplesamlphp/prepare.py -- do not edit.\n"
        f"$metadata[{php_str(idp_entity)}] = {php_val(md, 0)};\n"
    )


def sp_remote_php(
    sp_entity: str,
    acs: str,
    sign_response: bool,
    sign_assertion: bool,
    sp_cert_b64: str | None = None,
    validate_authnrequest: bool = False,
    encrypt: bool = False,
) -> str:
    md = {
        "AssertionConsumerService": [
            {"Binding": BINDING_POST, "Location": acs, "index": 0, "isDefault": True},
        ],
        "NameIDFormat": NAMEID_PERSISTENT,
        "simplesaml.nameidattribute": "uid",
        "attributes.NameFormat": NAMEFORMAT_BASIC,
        "simplesaml.attributes": True,
        "saml20.sign.response": sign_response,
        "saml20.sign.assertion": sign_assertion,
        "signature.algorithm": RSA_SHA256,
        "validate.authnrequest": validate_authnrequest,
        "assertion.encryption": encrypt,
        "nameid.encryption": False,
    }
    if sp_cert_b64 is not None:
        md["certData"] = sp_cert_b64
    return (
        "<?php\n"
        "// Generated by tests/support/simplesamlphp/prepare.py -- do not edit.\n"
        f"$metadata[{php_str(sp_entity)}] = {php_val(md, 0)};\n"
    )


def idp_metadata_xml(idp_entity: str, base: str, cert_b64: str) -> str:
    """Byte-for-byte what SimpleSAMLphp 1.19 serves at /saml2/idp/metadata.php."""

    def key(use: str) -> str:
        return (
            f'    <md:KeyDescriptor use="{use}">\n'
            '      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">\n'
            "        <ds:X509Data>\n"
            f"          <ds:X509Certificate>{cert_b64}</ds:X509Certificate>\n"
            "        </ds:X509Data>\n"
            "      </ds:KeyInfo>\n"
            "    </md:KeyDescriptor>\n"
        )

    return (
        '<?xml version="1.0"?>\n'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" '
        f"entityID={quoteattr(idp_entity)}>\n"
        '  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">\n'
        + key("signing")
        + key("encryption")
        + f'    <md:SingleLogoutService Binding="{BINDING_REDIRECT}" '
        f"Location={quoteattr(base + 'saml2/idp/SingleLogoutService.php')}/>\n"
        f"    <md:NameIDFormat>{NAMEID_PERSISTENT}</md:NameIDFormat>\n"
        f'    <md:SingleSignOnService Binding="{BINDING_REDIRECT}" '
        f"Location={quoteattr(base + 'saml2/idp/SSOService.php')}/>\n"
        "  </md:IDPSSODescriptor>\n"
        "</md:EntityDescriptor>\n"
    )


def make_cert(cert_dir: Path) -> str:
    if shutil.which("openssl") is None:
        raise PrepareError("the `openssl` command is not on PATH")
    cert_dir.mkdir(parents=True, exist_ok=True)
    key, crt = cert_dir / "idp.key", cert_dir / "idp.crt"
    for p in (key, crt):
        p.unlink(missing_ok=True)
    cmd = [
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-days", "3650", "-subj", "/CN=sso-bridge test IdP (SimpleSAMLphp)",
        "-keyout", str(key), "-out", str(crt),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 or not key.exists() or not crt.exists():
        raise PrepareError(f"openssl failed ({r.returncode}): {r.stderr.strip()}")
    os.chmod(key, 0o600)
    return pem_cert_b64(crt.read_text())


def pem_cert_b64(pem: str) -> str:
    """The base64 body of the first PEM certificate in `pem`."""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise PrepareError("not a PEM certificate")
    body = pem.split("-----BEGIN CERTIFICATE-----", 1)[1].split("-----END CERTIFICATE-----", 1)[0]
    b64 = "".join(body.split())
    try:
        base64.b64decode(b64, validate=True)
    except ValueError as e:
        raise PrepareError(f"certificate is not valid base64: {e}") from e
    return b64


# PHP extensions SimpleSAMLphp 1.19 cannot run without, and the Debian package
# that ships each (the simplesamlphp package does not depend on them).
REQUIRED_EXTENSIONS = {
    "dom": "php-xml",
    "libxml": "php-xml",
    "mbstring": "php-mbstring",
    "openssl": "php-common",
    "zlib": "php-common",
    "session": "php-common",
}


def check_php() -> None:
    php = shutil.which("php")
    if php is None:
        raise PrepareError("`php` is not on PATH (apt-get install php-cli)")
    code = (
        "$m=[];foreach($argv as $i=>$e){if($i>0&&!extension_loaded($e))$m[]=$e;}"
        "echo implode(' ',$m);"
    )
    r = subprocess.run([php, "-r", code, "--", *REQUIRED_EXTENSIONS], capture_output=True, text=True)
    if r.returncode != 0:
        raise PrepareError(f"`php -r` failed: {(r.stdout + r.stderr).strip()}")
    missing = r.stdout.split()
    if missing:
        pkgs = sorted({REQUIRED_EXTENSIONS[m] for m in missing})
        raise PrepareError(
            f"PHP extension(s) missing for SimpleSAMLphp: {', '.join(missing)}; "
            f"install: apt-get install {' '.join(pkgs)}"
        )


def php_lint(paths: list[Path]) -> None:
    php = shutil.which("php")
    if php is None:
        return
    for p in paths:
        r = subprocess.run([php, "-l", str(p)], capture_output=True, text=True)
        if r.returncode != 0:
            raise PrepareError(f"generated {p} does not parse: {(r.stdout + r.stderr).strip()}")


def yes_no(s: str) -> bool:
    s = s.strip().lower()
    if s in ("yes", "true", "1", "on"):
        return True
    if s in ("no", "false", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {s!r}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Configure a throwaway SimpleSAMLphp IdP.")
    ap.add_argument("--dir", required=True, type=Path)
    ap.add_argument("--port", required=True, type=int)
    ap.add_argument("--sp-entity-id", required=True)
    ap.add_argument("--acs-url", required=True)
    ap.add_argument("--sign-response", type=yes_no, default=False, metavar="yes|no")
    ap.add_argument("--sign-assertion", type=yes_no, default=True, metavar="yes|no")
    ap.add_argument("--sp-cert", type=Path, default=None, metavar="PEMFILE")
    ap.add_argument("--validate-authnrequest", type=yes_no, default=False, metavar="yes|no")
    ap.add_argument("--encrypt", type=yes_no, default=False, metavar="yes|no")
    ap.add_argument("--quiet", action="store_true", help="print nothing at all on success")
    a = ap.parse_args(argv)

    try:
        if not 1 <= a.port <= 65535:
            raise PrepareError(f"--port out of range: {a.port}")
        for name, v in (("--sp-entity-id", a.sp_entity_id), ("--acs-url", a.acs_url)):
            if not v or any(c in v for c in "\r\n\0"):
                raise PrepareError(f"{name} is empty or contains control characters")
        if not (SSP_ROOT / "www" / "saml2" / "idp" / "SSOService.php").is_file():
            raise PrepareError(
                f"SimpleSAMLphp not found under {SSP_ROOT} (apt-get install simplesamlphp)"
            )

        sp_cert_b64 = None
        if a.sp_cert is not None:
            sp_cert_b64 = pem_cert_b64(a.sp_cert.read_text())
        if (a.validate_authnrequest or a.encrypt) and sp_cert_b64 is None:
            raise PrepareError("--validate-authnrequest and --encrypt need --sp-cert")

        check_php()
        d = a.dir.resolve()
        for sub in ("config", "metadata", "cert", "log", "data", "tmp", "sessions"):
            (d / sub).mkdir(parents=True, exist_ok=True)

        base = f"http://127.0.0.1:{a.port}/"
        idp_entity = base + "saml2/idp/metadata.php"

        cert_b64 = make_cert(d / "cert")
        files = {
            d / "config" / "config.php": config_php(d, a.port),
            d / "config" / "authsources.php": authsources_php(),
            d / "metadata" / "saml20-idp-hosted.php": idp_hosted_php(
                idp_entity, a.sign_response, a.sign_assertion
            ),
            d / "metadata" / "saml20-sp-remote.php": sp_remote_php(
                a.sp_entity_id,
                a.acs_url,
                a.sign_response,
                a.sign_assertion,
                sp_cert_b64,
                a.validate_authnrequest,
                a.encrypt,
            ),
        }
        for p, text in files.items():
            write(p, text, 0o600 if p.name == "config.php" else 0o644)
        php_lint(list(files))
        write(d / "idp-metadata.xml", idp_metadata_xml(idp_entity, base, cert_b64))
    except PrepareError as e:
        print(f"prepare.py: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"prepare.py: error: {e}", file=sys.stderr)
        return 1

    if not a.quiet:
        print(f"SimpleSAMLphp IdP configured in {d} (entityID {idp_entity})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
