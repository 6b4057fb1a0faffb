"""Starts one tagd for the session and hands out SDK clients pointed at it.

tagd runs as a real process (``$TAGD_BIN serve``) on a free loopback port with a
throwaway data directory. The first start writes ``<data-dir>/credentials``; the suite
reads it, creates an access key with ``tagd admin credential create`` and registers the
resources each test needs with ``tagd admin resource add``, so tests never share one.
"""

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

# The SDK writes $HOME/.huaweicloud/application_id on first use: keep it out of the
# real home. This must happen before any SDK module is imported.
_HOME = tempfile.mkdtemp(prefix="tagd-sdk-home-")
os.environ["HOME"] = _HOME
# Credentials, endpoints or regions from the environment must not leak into the tests.
for _name in list(os.environ):
    if _name.startswith("HUAWEICLOUD_SDK_"):
        del os.environ[_name]

import pytest  # noqa: E402
from huaweicloudsdkcore.auth.credentials import BasicCredentials, GlobalCredentials  # noqa: E402
from huaweicloudsdkiam.v3.iam_credentials import IamCredentials  # noqa: E402
import huaweicloudsdkdataartsfabric.v1 as fabric  # noqa: E402
import huaweicloudsdkdis.v2 as dis  # noqa: E402
import huaweicloudsdkiam.v3 as iam  # noqa: E402
import huaweicloudsdkrds.v3 as rds  # noqa: E402
import huaweicloudsdktms.v1 as tms  # noqa: E402
import huaweicloudsdkworkspace.v2 as workspace  # noqa: E402

from sdkutil import as_dict, build, unique  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECS = 60


def pytest_unconfigure(config):
    shutil.rmtree(_HOME, ignore_errors=True)


def _tagd_bin():
    value = os.environ.get("TAGD_BIN")
    if value:
        path = Path(value)
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.exit(f"TAGD_BIN={value} is not an executable file", returncode=2)
        return path
    default = REPO / "target" / "debug" / "tagd"
    if default.is_file():
        return default
    pytest.exit(
        "set TAGD_BIN to a tagd binary (tests/sdk/run.sh builds one and sets it)",
        returncode=2,
    )


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env():
    """The environment for tagd: the caller's, without TAGD_* settings that would
    override the command line's intent (a TAGD_DATABASE_URL, say)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TAGD_")}


def _store_args():
    """``--database-url`` when the suite runs on PostgreSQL (run.sh with
    TAGD_SDK_BACKEND=postgres sets TAGD_SDK_DATABASE_URL to a fresh database)."""
    url = os.environ.get("TAGD_SDK_DATABASE_URL")
    return ["--database-url", url] if url else []


def _read_credentials(path):
    creds = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition(" = ")
        if sep and value.startswith('"') and value.endswith('"'):
            creds[name.strip()] = value[1:-1]
    missing = {
        "domain_name",
        "domain_id",
        "project_id",
        "project_name",
        "user_name",
        "password",
    } - creds.keys()
    assert not missing, f"{path} lacks {sorted(missing)}"
    return creds


class Tagd:
    """A running tagd, its first-run identity and the access key the suite signs with."""

    def __init__(self, binary, workdir, extra_args=(), ca_file=None, store_args=None):
        """``ca_file``: the certificate tagd serves HTTPS with (its ``extra_args`` name
        it); the endpoint is then ``https://`` and readiness is checked over TLS.
        ``store_args``: the store options (default: the suite's store, see
        ``_store_args``)."""
        self.binary = binary
        self.extra_args = list(extra_args)
        self.ca_file = ca_file
        self.store_args = _store_args() if store_args is None else list(store_args)
        self.data_dir = workdir / "data"
        self.log_path = workdir / "tagd.log"
        self.proc = None
        self.port = None
        self._start()
        self.creds = _read_credentials(self.data_dir / "credentials")
        self.domain_name = self.creds["domain_name"]
        self.domain_id = self.creds["domain_id"]
        self.project_id = self.creds["project_id"]
        self.project_name = self.creds["project_name"]
        self.user_name = self.creds["user_name"]
        self.password = self.creds["password"]
        self.ak, self.sk = self.create_access_key(self.user_name)

    @property
    def endpoint(self):
        scheme = "https" if self.ca_file else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return "(no log)"

    def _start(self):
        last_error = None
        for _ in range(3):  # another process may take the port between probe and bind
            self.port = _free_port()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [
                    str(self.binary),
                    "serve",
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    "--data-dir",
                    str(self.data_dir),
                    *self.store_args,
                    *self.extra_args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_clean_env(),
            )
            log.close()
            last_error = self._wait_ready()
            if last_error is None:
                return
            self.stop()
        raise RuntimeError(f"tagd did not start: {last_error}\n--- tagd log ---\n{self.log()}")

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_SECS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"tagd exited with status {self.proc.returncode}"
            if (self.data_dir / "credentials").exists():
                try:
                    context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
                    urllib.request.urlopen(self.endpoint + "/", timeout=2, context=context).close()
                    return None
                except urllib.error.HTTPError:
                    return None  # any HTTP answer (404 here) means it serves
                except OSError:
                    pass
            time.sleep(0.05)
        return f"no answer on {self.endpoint} within {START_TIMEOUT_SECS}s"

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def admin(self, *args, stdin=None):
        """Runs ``tagd admin --data-dir <dir> ARGS`` and returns its standard output."""
        result = subprocess.run(
            [str(self.binary), "admin", "--data-dir", str(self.data_dir), *self.store_args, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=_clean_env(),
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"tagd admin {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}"
            )
        return result.stdout

    def create_access_key(self, user_name):
        out = self.admin("credential", "create", "--user", user_name)
        fields = {}
        for line in out.splitlines():
            name, sep, value = line.partition(" = ")
            if sep:
                fields[name.strip()] = value.strip()
        assert fields.get("access_key") and fields.get("secret_key"), (
            f"unexpected output of credential create: {out!r}"
        )
        return fields["access_key"], fields["secret_key"]

    def add_resource(self, resource_type, resource_id=None, prefix=None):
        """Registers a resource of ``resource_type`` in the first-run project and
        returns its id (a fresh one unless given)."""
        resource_id = resource_id or unique(prefix or resource_type.split("-")[0])
        self.admin(
            "resource",
            "add",
            "--project",
            self.project_id,
            "--type",
            resource_type,
            "--id",
            resource_id,
        )
        return resource_id

    def create_user(self, admin=False):
        """Creates a user of the first-run domain; returns (user_id, name, password)."""
        name = unique("user")
        password = unique("pw") + "-Secret"
        args = ["user", "create"] + (["--admin"] if admin else []) + [name]
        out = self.admin(*args, stdin=password + "\n")
        user_id = out.split("\t")[0].strip()
        assert user_id, f"unexpected output of user create: {out!r}"
        return user_id, name, password


def _serve(workdir, extra_args=(), ca_file=None, store_args=None):
    """A tagd for the duration of a fixture; the test fails if it dies meanwhile."""
    server = Tagd(_tagd_bin(), workdir, extra_args, ca_file, store_args)
    yield server
    crashed = server.proc.poll() is not None
    server.stop()
    if crashed:
        pytest.fail(
            f"tagd exited during the run (status {server.proc.returncode})\n"
            f"--- tagd log ---\n{server.log()}"
        )


@pytest.fixture(scope="session")
def tagd(tmp_path_factory):
    yield from _serve(tmp_path_factory.mktemp("tagd"))


@pytest.fixture(scope="module")
def throttled_tagd(tmp_path_factory):
    """A second tagd whose access keys may make one request a second, two at once. It
    runs on its own SQLite store: the session's PostgreSQL database belongs to the
    session's tagd and its server key."""
    yield from _serve(
        tmp_path_factory.mktemp("throttled"),
        ["--rate-limit-per-credential", "1", "--rate-limit-burst-secs", "2"],
        store_args=[],
    )


class Sdk:
    """Builds clients of every SDK against the session's tagd.

    AK/SK default to the key the suite created; ``handler`` is an ``HttpHandler``
    (see ``sdkutil.request_handler``)."""

    def __init__(self, server):
        self.t = server

    def _basic(self, ak, sk, security_token):
        creds = BasicCredentials(ak or self.t.ak, sk or self.t.sk, self.t.project_id)
        if security_token is not None:
            creds = creds.with_security_token(security_token)
        return creds

    def tms(self, ak=None, sk=None, handler=None):
        creds = GlobalCredentials(ak or self.t.ak, sk or self.t.sk, self.t.domain_id)
        return build(tms.TmsClient, creds, self.t.endpoint, handler)

    def workspace(self, ak=None, sk=None, security_token=None, handler=None):
        return build(
            workspace.WorkspaceClient,
            self._basic(ak, sk, security_token),
            self.t.endpoint,
            handler,
        )

    def fabric(self, ak=None, sk=None, security_token=None, handler=None):
        return build(
            fabric.DataArtsFabricClient,
            self._basic(ak, sk, security_token),
            self.t.endpoint,
            handler,
        )

    def rds(self, ak=None, sk=None, security_token=None, handler=None, credentials=None):
        return build(
            rds.RdsClient,
            credentials or self._basic(ak, sk, security_token),
            self.t.endpoint,
            handler,
        )

    def dis(self, ak=None, sk=None, security_token=None, handler=None, credentials=None):
        return build(
            dis.DisClient,
            credentials or self._basic(ak, sk, security_token),
            self.t.endpoint,
            handler,
        )

    def iam(self, token=None, handler=None):
        """An IAM client sending ``X-Auth-Token: token``, or no authentication at all
        (for ``POST /v3/auth/tokens``)."""
        creds = IamCredentials()
        if token is not None:
            creds = creds.with_x_auth_token(token)
        return build(iam.IamClient, creds, self.t.endpoint, handler)

    # --- reading back through TMS

    def tags_of(self, resource_type, resource_id):
        """The tags TMS reports for a resource of the first-run project, as a dict."""
        resp = self.tms().show_resource_tag(
            tms.ShowResourceTagRequest(
                resource_id=resource_id,
                project_id=self.t.project_id,
                resource_type=resource_type,
            )
        )
        assert resp.status_code == 200
        return as_dict(resp.tags)

    # --- tokens

    def password_token(self, scope, user_name=None, password=None):
        """Issues a token with the password method; ``scope`` is an ``iam.AuthScope``."""
        body = iam.KeystoneCreateUserTokenByPasswordRequestBody(
            auth=iam.PwdAuth(
                identity=iam.PwdIdentity(
                    methods=["password"],
                    password=iam.PwdPassword(
                        user=iam.PwdPasswordUser(
                            domain=iam.PwdPasswordUserDomain(name=self.t.domain_name),
                            name=user_name or self.t.user_name,
                            password=password or self.t.password,
                        )
                    ),
                ),
                scope=scope,
            )
        )
        return self.iam().keystone_create_user_token_by_password(
            iam.KeystoneCreateUserTokenByPasswordRequest(nocatalog="true", body=body)
        )

    def domain_scope(self):
        return iam.AuthScope(domain=iam.AuthScopeDomain(name=self.t.domain_name))

    def project_scope(self):
        return iam.AuthScope(project=iam.AuthScopeProject(id=self.t.project_id))


@pytest.fixture(scope="session")
def sdk(tagd):
    return Sdk(tagd)


@pytest.fixture(scope="session")
def domain_token(sdk):
    return sdk.password_token(sdk.domain_scope()).x_subject_token


@pytest.fixture(scope="session")
def project_token(sdk):
    return sdk.password_token(sdk.project_scope()).x_subject_token


@pytest.fixture
def resource(tagd):
    """``resource(type)`` registers a fresh resource of that type and returns its id."""
    return tagd.add_resource
