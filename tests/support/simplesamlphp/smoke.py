#!/usr/bin/env python3
"""Hand-run smoke test for the SimpleSAMLphp test IdP (Python 3.11 stdlib only).

    python3 tests/support/simplesamlphp/smoke.py [--user alice] [--sign-response yes]
                                                 [--sign-assertion yes] [--keep]

It runs prepare.py into a temporary directory, starts `php -S` on a free
loopback port, sends an SP-initiated AuthnRequest (HTTP-Redirect binding) with
a cookie-keeping client, logs the user in through the login form, takes the
auto-POST form aimed at the ACS, decodes SAMLResponse, checks it (InResponseTo,
Destination, Audience, persistent NameID, attributes, RSA-SHA256 signatures,
`xmlsec1 --verify`, tamper detection), prints the decoded XML and stops php.

Nothing listens on the ACS URL: the client never submits the final form.
Exit status 0 = all checks passed.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html.parser
import http.cookiejar
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
SSP_WWW = "/usr/share/simplesamlphp/www"

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"

EXPECTED = {
    "alice": ("alice-0001", {"uid": ["alice-0001"], "email": ["alice@acme.test"],
                             "displayName": ["Alice Anderson"], "groups": ["lf-admins", "ml-team"]}),
    "bob": ("bob-0002", {"uid": ["bob-0002"], "email": ["Bob.Builder@ACME.test"],
                         "displayName": ["Bob Builder"], "groups": ["ml-team"]}),
    "carol": ("carol-0003", {"uid": ["carol-0003"], "email": ["carol@acme.test"],
                             "displayName": ["Carol Chen"]}),
    "mallory": ("mallory-0004", {"uid": ["mallory-0004"], "email": ["mallory@evil.test"],
                                 "displayName": ["Mallory"], "groups": ["lf-admins"]}),
}


class Fail(Exception):
    pass


def check(cond: bool, what: str) -> None:
    if not cond:
        raise Fail(what)
    print(f"  ok: {what}")


# ------------------------------------------------------------------ HTML forms


class FormParser(html.parser.HTMLParser):
    """Collects <form>s: action, method and named <input> values."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": (a.get("method") or "get").lower(),
                               "inputs": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value") or ""


def forms_of(page: str) -> list[dict]:
    p = FormParser()
    p.feed(page)
    return p.forms


# ------------------------------------------------------------------ server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_php(d: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, SIMPLESAMLPHP_CONFIG_DIR=str(d / "config"), PHP_CLI_SERVER_WORKERS="4")
    log = open(d / "php-server.log", "wb")
    proc = subprocess.Popen(
        ["php", "-S", f"127.0.0.1:{port}", "-t", SSP_WWW],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: master + workers die together
    )
    deadline = time.monotonic() + 15
    url = f"http://127.0.0.1:{port}/saml2/idp/metadata.php"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Fail(f"php -S exited with {proc.returncode}; see {d / 'php-server.log'}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return proc
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    stop_php(proc)
    raise Fail("php -S did not answer within 15 s")


def stop_php(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


# ------------------------------------------------------------------ SAML


def authn_request(req_id: str, sso_url: str, sp: str, acs: str) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f'<samlp:AuthnRequest xmlns:samlp="{NS["samlp"]}" xmlns:saml="{NS["saml"]}" '
        f'ID="{req_id}" Version="2.0" IssueInstant="{now}" Destination="{sso_url}" '
        f'AssertionConsumerServiceURL="{acs}" '
        f'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">'
        f"<saml:Issuer>{sp}</saml:Issuer>"
        f'<samlp:NameIDPolicy Format="{PERSISTENT}" AllowCreate="true"/>'
        f"</samlp:AuthnRequest>"
    )


def redirect_encode(xml: str) -> str:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw DEFLATE, as the binding demands
    return base64.b64encode(c.compress(xml.encode()) + c.flush()).decode()


def xmlsec_verify(xml_file: Path, crt: Path, node: str | None) -> tuple[bool, str]:
    cmd = ["xmlsec1", "--verify", "--pubkey-cert-pem", str(crt),
           "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
           "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Response"]
    if node == "assertion":
        cmd += ["--node-xpath", "/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']"]
    elif node == "response":
        cmd += ["--node-xpath", "/*[local-name()='Response']/*[local-name()='Signature']"]
    r = subprocess.run(cmd + [str(xml_file)], capture_output=True, text=True)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


# ------------------------------------------------------------------ the run


def run(a, d: Path) -> None:
    port = a.port or free_port()
    base = f"http://127.0.0.1:{port}/"
    sso = base + "saml2/idp/SSOService.php"

    r = subprocess.run(
        [sys.executable, str(HERE / "prepare.py"), "--dir", str(d), "--port", str(port),
         "--sp-entity-id", a.sp_entity_id, "--acs-url", a.acs_url,
         "--sign-response", a.sign_response, "--sign-assertion", a.sign_assertion],
        capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail(f"prepare.py failed: {r.stderr.strip() or r.stdout.strip()}")
    print(f"prepared {d} (port {port})")

    proc = start_php(d, port)
    try:
        print(f"php -S 127.0.0.1:{port} running (pid {proc.pid})")
        served = urllib.request.urlopen(base + "saml2/idp/metadata.php").read().decode()
        check(served == (d / "idp-metadata.xml").read_text(),
              "idp-metadata.xml is byte-identical to what /saml2/idp/metadata.php serves")

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

        req_id = "_" + secrets.token_hex(20)
        relay = "rs-" + secrets.token_urlsafe(12)
        q = urllib.parse.urlencode({"SAMLRequest": redirect_encode(authn_request(req_id, sso, a.sp_entity_id,
                                                                                  a.acs_url)),
                                    "RelayState": relay})
        with opener.open(f"{sso}?{q}", timeout=20) as resp:   # 302 -> login form, followed
            login_url, page = resp.geturl(), resp.read().decode()
        (d / "last-login-form.html").write_text(page)
        print(f"  login form at {login_url.split('?')[0]}")
        check(urllib.parse.urlsplit(login_url).path == "/module.php/core/loginuserpass.php",
              "SSO redirected to module.php/core/loginuserpass.php?AuthState=...")
        forms = [f for f in forms_of(page) if "AuthState" in f["inputs"]]
        check(len(forms) == 1 and {"username", "password"} <= forms[0]["inputs"].keys(),
              "login form has username, password and hidden AuthState")
        check([c.name for c in jar] and all(not c.name.lower().startswith("ssob_") for c in jar),
              f"IdP cookies {sorted(c.name for c in jar)} do not collide with ssob_*")

        if a.bad_password_check:
            f = forms[0]
            body = urllib.parse.urlencode({"username": a.user, "password": "wrong",
                                           "AuthState": f["inputs"]["AuthState"]}).encode()
            with opener.open(urllib.parse.urljoin(login_url, f["action"]), body, timeout=20) as resp:
                again = resp.read().decode()
            check(resp.status == 200 and any("AuthState" in g["inputs"] for g in forms_of(again))
                  and "SAMLResponse" not in again,
                  "wrong password: 200, login form shown again, no SAMLResponse")
            forms = [g for g in forms_of(again) if "AuthState" in g["inputs"]]

        f = forms[0]
        body = urllib.parse.urlencode({"username": a.user, "password": a.user + "pass",
                                       "AuthState": f["inputs"]["AuthState"]}).encode()
        post_url = urllib.parse.urljoin(login_url, f["action"])
        with opener.open(post_url, body, timeout=20) as resp:
            final = resp.read().decode()
        (d / "last-acs-form.html").write_text(final)
        post_forms = [g for g in forms_of(final) if "SAMLResponse" in g["inputs"]]
        check(len(post_forms) == 1, "final page has one form carrying SAMLResponse")
        pf = post_forms[0]
        check(pf["method"] == "post" and pf["action"] == a.acs_url, f"form POSTs to the ACS URL {a.acs_url}")
        check(pf["inputs"].get("RelayState") == relay, "RelayState echoed unchanged")
        print(f"  final form fields: {sorted(pf['inputs'])}")

        xml_bytes = base64.b64decode(pf["inputs"]["SAMLResponse"])
        xml_file = d / "last-response.xml"
        xml_file.write_bytes(xml_bytes)
        root = ET.fromstring(xml_bytes)
        check(root.tag == f"{{{NS['samlp']}}}Response", "root is samlp:Response")
        check(root.get("InResponseTo") == req_id, "Response InResponseTo = AuthnRequest ID")
        check(root.get("Destination") == a.acs_url, "Response Destination = ACS URL")
        check(root.find("samlp:Status/samlp:StatusCode", NS).get("Value")
              == "urn:oasis:names:tc:SAML:2.0:status:Success", "StatusCode Success")
        assertions = root.findall("saml:Assertion", NS)
        check(len(assertions) == 1 and root.find("saml:EncryptedAssertion", NS) is None,
              "exactly one plain (unencrypted) Assertion")
        asrt = assertions[0]
        idp_entity = base + "saml2/idp/metadata.php"
        check(root.findtext("saml:Issuer", namespaces=NS) == idp_entity
              and asrt.findtext("saml:Issuer", namespaces=NS) == idp_entity, "Issuer = IdP entityID (both)")
        check(asrt.findtext("saml:Conditions/saml:AudienceRestriction/saml:Audience", namespaces=NS)
              == a.sp_entity_id, "Audience = SP entityID")
        scd = asrt.find("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS)
        check(scd.get("InResponseTo") == req_id and scd.get("Recipient") == a.acs_url,
              "SubjectConfirmationData InResponseTo/Recipient")
        nameid = asrt.find("saml:Subject/saml:NameID", NS)
        want_nameid, want_attrs = EXPECTED[a.user]
        check(nameid.get("Format") == PERSISTENT and nameid.text == want_nameid,
              f"NameID persistent = {want_nameid}")
        attrs = {}
        for at in asrt.findall("saml:AttributeStatement/saml:Attribute", NS):
            check(at.get("NameFormat") == BASIC, f"attribute {at.get('Name')} NameFormat basic")
            attrs[at.get("Name")] = [v.text for v in at.findall("saml:AttributeValue", NS)]
        check(attrs == want_attrs, f"attributes = {want_attrs}")

        resp_sig = root.find("ds:Signature", NS)
        asrt_sig = asrt.find("ds:Signature", NS)
        want_resp, want_asrt = a.sign_response == "yes", a.sign_assertion == "yes"
        check((resp_sig is not None) == want_resp, f"Response signed: {want_resp}")
        check((asrt_sig is not None) == want_asrt, f"Assertion signed: {want_asrt}")
        crt = d / "cert" / "idp.crt"
        for name, sig, parent in (("response", resp_sig, root), ("assertion", asrt_sig, asrt)):
            if sig is None:
                continue
            alg = sig.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm")
            check(alg == RSA_SHA256, f"{name} SignatureMethod rsa-sha256")
            dig = sig.find("ds:SignedInfo/ds:Reference/ds:DigestMethod", NS).get("Algorithm")
            ref = sig.find("ds:SignedInfo/ds:Reference", NS).get("URI")
            check(ref == "#" + parent.get("ID"), f"{name} Reference URI = #{parent.get('ID')}")
            print(f"  {name} DigestMethod {dig}; Signature is child #{list(parent).index(sig)} "
                  f"of {parent.tag.split('}')[1]} (after Issuer)")
            ok, out = xmlsec_verify(xml_file, crt, name)
            check(ok and "\nOK\n" in f"\n{out}\n", f"xmlsec1 --verify accepts the {name} signature")
        if want_asrt and not want_resp:
            ok, out = xmlsec_verify(xml_file, crt, None)
            check(ok, "xmlsec1 --verify --id-attr:ID ...:Assertion (as in the brief) accepts it")
        # tamper: change alice's uid value, signature must break
        if want_asrt or want_resp:
            bad = xml_bytes.replace(f">{want_nameid}<".encode(), b">someone-else<", 1)
            bad_file = d / "last-response-tampered.xml"
            bad_file.write_bytes(bad)
            ok, _ = xmlsec_verify(bad_file, crt, "assertion" if want_asrt else "response")
            check(not ok, "tampered NameID makes xmlsec1 reject the signature")

        if a.print_xml:
            print("\n----- decoded SAMLResponse -----")
            print(xml_bytes.decode())
            print("----- end -----")
    finally:
        stop_php(proc)
        print(f"php -S stopped (pid {proc.pid})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--user", default="alice", choices=sorted(EXPECTED))
    ap.add_argument("--port", type=int, default=0, help="default: a free loopback port")
    ap.add_argument("--sp-entity-id", default="http://127.0.0.1:18080/saml/metadata")
    ap.add_argument("--acs-url", default="http://127.0.0.1:18080/saml/acs")
    ap.add_argument("--sign-response", choices=["yes", "no"], default="no")
    ap.add_argument("--sign-assertion", choices=["yes", "no"], default="yes")
    ap.add_argument("--dir", type=Path, help="prepare here instead of a temp dir (kept)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, last-response.xml)")
    ap.add_argument("--no-xml", dest="print_xml", action="store_false", help="do not print the decoded XML")
    ap.add_argument("--no-bad-password-check", dest="bad_password_check", action="store_false")
    a = ap.parse_args()

    for tool in ("php", "xmlsec1", "openssl"):
        if shutil.which(tool) is None:
            print(f"smoke: `{tool}` not found", file=sys.stderr)
            return 2

    d = a.dir.resolve() if a.dir else Path(tempfile.mkdtemp(prefix="ssp-smoke-"))
    try:
        run(a, d)
    except Fail as e:
        print(f"SMOKE FAILED: {e}\n  (IdP log: {d / 'log' / 'simplesamlphp.log'}, kept)", file=sys.stderr)
        return 1
    if not a.dir and not a.keep:
        shutil.rmtree(d, ignore_errors=True)
    else:
        print(f"kept {d}")
    print("SMOKE OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
