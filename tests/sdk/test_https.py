"""The official SDKs over HTTPS: tagd serves a self-signed certificate made for this
module, and clients configured with it as their CA (``HttpConfig.ssl_ca_cert``) work
as over plain HTTP; a client that does not trust it fails its handshake."""

import datetime
import ipaddress

import huaweicloudsdkrds.v3 as rds
import huaweicloudsdktms.v1 as tms
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from huaweicloudsdkcore.auth.credentials import BasicCredentials, GlobalCredentials
from huaweicloudsdkcore.exceptions.exceptions import SslHandShakeException

from conftest import _serve
from sdkutil import as_dict, http_config


def self_signed(directory):
    """A certificate for 127.0.0.1 and its key, as PEM files in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tagd test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def https_tagd(tmp_path_factory):
    directory = tmp_path_factory.mktemp("https")
    cert, key = self_signed(directory)
    yield from _serve(
        directory,
        ["--tls-cert-file", str(cert), "--tls-key-file", str(key)],
        ca_file=str(cert),
        store_args=[],  # its own SQLite store (see throttled_tagd)
    )


def sdk_client(cls, credentials, server, ca_file):
    """An SDK client of ``cls`` that trusts ``ca_file`` (None: the system's CAs only)."""
    config = http_config()
    config.ssl_ca_cert = ca_file
    return (
        cls.new_builder()
        .with_http_config(config)
        .with_credentials(credentials)
        .with_endpoints([server.endpoint])
        .build()
    )


def rds_client(server, ca_file):
    return sdk_client(
        rds.RdsClient, BasicCredentials(server.ak, server.sk, server.project_id), server, ca_file
    )


def test_the_sdks_work_over_https_with_the_servers_certificate(https_tagd):
    instance = https_tagd.add_resource("rds")
    client = rds_client(https_tagd, https_tagd.ca_file)
    client.batch_tag_add_action(
        rds.BatchTagAddActionRequest(
            instance_id=instance,
            body=rds.BatchTagActionAddRequestBody(
                action="create", tags=[rds.TagWithKeyValue(key="env", value="tls")]
            ),
        )
    )
    resp = client.list_instance_tags(rds.ListInstanceTagsRequest(instance_id=instance))
    assert [(t.key, t.value) for t in resp.tags] == [("env", "tls")]
    # The same tag through TMS, whose global client sends X-Domain-Id.
    tms_client = sdk_client(
        tms.TmsClient,
        GlobalCredentials(https_tagd.ak, https_tagd.sk, https_tagd.domain_id),
        https_tagd,
        https_tagd.ca_file,
    )
    resp = tms_client.show_resource_tag(
        tms.ShowResourceTagRequest(
            resource_id=instance, project_id=https_tagd.project_id, resource_type="rds"
        )
    )
    assert as_dict(resp.tags) == {"env": "tls"}


def test_a_client_that_does_not_trust_the_certificate_fails_its_handshake(https_tagd):
    client = rds_client(https_tagd, None)
    with pytest.raises(SslHandShakeException):
        client.list_instance_tags(rds.ListInstanceTagsRequest(instance_id="any"))
