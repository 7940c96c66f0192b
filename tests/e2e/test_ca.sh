#!/usr/bin/env bash
# End-to-end test of sfmtls-ca (SPEC section 9): everything it writes must verify with
# OpenSSL (root as -CAfile, intermediate as -untrusted), its PKCS#12 must open without
# -legacy, its negative kinds must really be negative, and `check` must exit 0/1/2 with
# the right codes printed.
#
# usage: test_ca.sh PATH/TO/sfmtls-ca
set -euo pipefail

CA_BIN=${1:?usage: test_ca.sh PATH/TO/sfmtls-ca}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sfmtls-test-ca.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PW='s3cret-Pass'
failures=0
checks=0

pass() { checks=$((checks + 1)); printf 'ok   %s\n' "$1"; }
fail() {
    checks=$((checks + 1)); failures=$((failures + 1)); printf 'FAIL %s\n' "$1"
    if [[ -s "$WORK/out" ]]; then sed 's/^/     | /' "$WORK/out"; fi
}

# run CMD...: runs it with output in $WORK/out; sets $rc.
run() { set +e; "$@" >"$WORK/out" 2>&1; rc=$?; set -e; }

# expect_ok NAME CMD...: the command succeeds.
expect_ok() { local name=$1; shift; run "$@"; if ((rc == 0)); then pass "$name"; else fail "$name (exit $rc)"; fi; }

# expect_exit NAME CODE CMD...: the command exits with CODE.
expect_exit() {
    local name=$1 code=$2; shift 2; run "$@"
    if ((rc == code)); then pass "$name"; else fail "$name (exit $rc, wanted $code)"; fi
}

# expect_out NAME CODE PATTERN CMD...: exits with CODE and its output matches PATTERN (grep -E).
expect_out() {
    local name=$1 code=$2 pattern=$3; shift 3; run "$@"
    if ((rc == code)) && grep -Eq -- "$pattern" "$WORK/out"; then pass "$name"
    else fail "$name (exit $rc, wanted $code and /$pattern/)"; fi
}

# expect_no_out NAME PATTERN: the last command's output does not match PATTERN.
expect_no_out() {
    local name=$1 pattern=$2
    if grep -Eq -- "$pattern" "$WORK/out"; then fail "$name (/$pattern/ present)"; else pass "$name"; fi
}

# same_pubkey NAME CERT KEY: the key belongs to the certificate.
same_pubkey() {
    local a b
    a=$(openssl x509 -in "$2" -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum)
    b=$(openssl pkey -in "$3" -pubout -outform DER 2>/dev/null | sha256sum)
    : >"$WORK/out"
    if [[ -n "$a" && "$a" == "$b" ]]; then pass "$1"; else fail "$1"; fi
}

# A Java 17 reader of PKCS#12, run when java is installed: loads the key and its chain under
# one alias and proves the key belongs to the first certificate by a signature.
cat >"$WORK/P12Check.java" <<'JAVA'
import java.io.FileInputStream;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.Certificate;
import java.util.Collections;

public class P12Check {
    public static void main(String[] args) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(args[0])) {
            ks.load(in, args[1].toCharArray());
        }
        int keys = 0;
        for (String alias : Collections.list(ks.aliases())) {
            if (!ks.isKeyEntry(alias)) continue;
            PrivateKey key = (PrivateKey) ks.getKey(alias, args[1].toCharArray());
            Certificate[] chain = ks.getCertificateChain(alias);
            if (key == null || chain == null || chain.length < 1) throw new Exception("no chain for " + alias);
            String alg = key.getAlgorithm().equals("EC") ? "SHA256withECDSA" : "SHA256withRSA";
            Signature s = Signature.getInstance(alg);
            s.initSign(key);
            s.update(new byte[] {1, 2, 3});
            byte[] sig = s.sign();
            s.initVerify(chain[0].getPublicKey());
            s.update(new byte[] {1, 2, 3});
            if (!s.verify(sig)) throw new Exception("key does not match the certificate");
            System.out.println("alias=" + alias + " key=" + key.getAlgorithm() + " chain=" + chain.length);
            keys++;
        }
        if (keys != 1) throw new Exception(keys + " key entries");
    }
}
JAVA
have_java=0
if command -v java >/dev/null 2>&1 && java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])'; then have_java=1; fi

# ---- the command line --------------------------------------------------------------------
expect_out "--version prints the version" 0 '^sfmtls-ca [0-9]+\.[0-9]+' "$CA_BIN" --version
expect_out "--help lists the commands" 0 'init.*' "$CA_BIN" --help
for cmd in init issue check; do
    expect_out "$cmd --help prints its usage" 0 "usage: sfmtls-ca $cmd" "$CA_BIN" "$cmd" --help
done
expect_out "an unknown flag is an error naming it" 2 'unknown flag --frobnicate' \
    "$CA_BIN" issue client --dir "$WORK/x" --cn a --frobnicate
expect_out "an unknown flag=value names the flag" 2 'unknown flag --nope' "$CA_BIN" check f --nope=1
expect_exit "no command is a usage error" 2 "$CA_BIN"
expect_exit "an unknown command is a usage error" 2 "$CA_BIN" frob
expect_exit "init without --dir is a usage error" 2 "$CA_BIN" init
expect_exit "a bad --key is a usage error" 2 "$CA_BIN" init --dir "$WORK/x" --key dsa
expect_exit "issue without a kind is a usage error" 2 "$CA_BIN" issue --dir "$WORK/x" --cn a
expect_exit "two negative kinds are a usage error" 2 \
    "$CA_BIN" issue client --dir "$WORK/x" --cn a --expired --untrusted
expect_exit "a bad --days is a usage error" 2 "$CA_BIN" issue client --dir "$WORK/x" --cn a --days 0
expect_exit "issue from a directory without a CA fails" 1 "$CA_BIN" issue client --dir "$WORK/none" --cn a

# ---- good certificates, EC and RSA -------------------------------------------------------
for key in ec rsa2048; do
    dir="$WORK/ca-$key"
    expect_ok "[$key] init makes a root and an intermediate" "$CA_BIN" init --dir "$dir" --key "$key"
    expect_out "[$key] init refuses a directory that holds a CA" 1 'already holds a CA' \
        "$CA_BIN" init --dir "$dir" --key "$key"
    perms=$(stat -c '%a' "$dir/ca.key" "$dir/intermediate.key" | sort -u)
    if [[ "$perms" == 600 ]]; then pass "[$key] CA keys are mode 0600"; else : >"$WORK/out"; fail "[$key] CA keys are mode 0600 ($perms)"; fi
    expect_ok "[$key] the intermediate verifies against the root" \
        openssl verify -CAfile "$dir/ca.pem" "$dir/intermediate.pem"
    expect_out "[$key] the root is a CA" 0 'CA:TRUE' openssl x509 -in "$dir/ca.pem" -noout -ext basicConstraints
    same_pubkey "[$key] ca.key belongs to ca.pem" "$dir/ca.pem" "$dir/ca.key"
    same_pubkey "[$key] intermediate.key belongs to intermediate.pem" "$dir/intermediate.pem" "$dir/intermediate.key"

    # a client, with the --name=value form and a PKCS#12
    expect_ok "[$key] issue client" "$CA_BIN" issue client "--dir=$dir" --cn=alice "--key=$key" --p12 "$PW"
    c="$dir/clients/alice"
    for ext in crt key chain.pem p12; do
        if [[ -s "$c.$ext" ]]; then pass "[$key] client wrote alice.$ext"; else : >"$WORK/out"; fail "[$key] client wrote alice.$ext"; fi
    done
    expect_ok "[$key] client verifies (root -CAfile, intermediate -untrusted)" \
        openssl verify -CAfile "$dir/ca.pem" -untrusted "$dir/intermediate.pem" "$c.crt"
    expect_ok "[$key] client verifies with its chain.pem as -untrusted" \
        openssl verify -CAfile "$dir/ca.pem" -untrusted "$c.chain.pem" "$c.crt"
    expect_ok "[$key] client verifies for purpose sslclient" \
        openssl verify -purpose sslclient -CAfile "$dir/ca.pem" -untrusted "$dir/intermediate.pem" "$c.crt"
    expect_out "[$key] client EKU is TLS Web Client Authentication" 0 'TLS Web Client Authentication' \
        openssl x509 -in "$c.crt" -noout -ext extendedKeyUsage
    expect_out "[$key] client subject is CN=alice,O=sfmtls" 0 '^subject=CN=alice,O=sfmtls$' \
        openssl x509 -in "$c.crt" -noout -subject -nameopt RFC2253
    same_pubkey "[$key] alice.key belongs to alice.crt" "$c.crt" "$c.key"
    if [[ $(stat -c '%a' "$c.key") == 600 ]]; then pass "[$key] client key is mode 0600"; else : >"$WORK/out"; fail "[$key] client key is mode 0600"; fi
    expect_out "[$key] the key is PKCS#8 PEM" 0 'BEGIN PRIVATE KEY' cat "$c.key"
    if [[ "$key" == ec ]]; then
        expect_out "[$key] the key is P-256" 0 'prime256v1|P-256' openssl pkey -in "$c.key" -noout -text
    else
        expect_out "[$key] the key is RSA-2048" 0 '2048 bit' openssl pkey -in "$c.key" -noout -text
    fi

    # PKCS#12 opens with OpenSSL 3's default provider (no -legacy)
    expect_out "[$key] p12 opens without -legacy (certificates)" 0 'subject=.*CN ?= ?alice' \
        openssl pkcs12 -in "$c.p12" -passin "pass:$PW" -nokeys
    expect_out "[$key] p12 holds the intermediate too" 0 'subject=.*Intermediate' \
        openssl pkcs12 -in "$c.p12" -passin "pass:$PW" -nokeys
    expect_out "[$key] p12 opens without -legacy (key)" 0 'BEGIN PRIVATE KEY' \
        openssl pkcs12 -in "$c.p12" -passin "pass:$PW" -nocerts -nodes
    openssl pkcs12 -in "$c.p12" -passin "pass:$PW" -nocerts -nodes 2>/dev/null | openssl pkey -out "$WORK/p12.key" 2>/dev/null || true
    same_pubkey "[$key] the p12 key belongs to the certificate" "$c.crt" "$WORK/p12.key"
    expect_out "[$key] p12 uses 3DES and a SHA-256 MAC" 0 'MAC: sha256' \
        openssl pkcs12 -in "$c.p12" -passin "pass:$PW" -info -noout
    expect_no_out "[$key] p12 uses no RC2/RC4" 'RC2|RC4|rc2|rc4'
    expect_out "[$key] p12 key and leaf carry a localKeyID" 0 'localKeyID' \
        openssl pkcs12 -in "$c.p12" -passin "pass:$PW" -nokeys
    if ((have_java)); then
        expect_out "[$key] Java 17 loads the p12: key with a 2-certificate chain" 0 'alias=alice key=.* chain=2' \
            java "$WORK/P12Check.java" "$c.p12" "$PW"
    else
        printf 'skip [%s] Java 17 loads the p12 (no java 17+)\n' "$key"
    fi
    expect_exit "[$key] p12 refuses a wrong password" 1 \
        openssl pkcs12 -in "$c.p12" -passin pass:wrong -nokeys

    if [[ "$key" == rsa2048 ]]; then
        # wolfSSL 5.5.4 leaves out the padding block of a PKCS#8 key whose length is a
        # multiple of 8 (1 RSA key in 8); sfmtls-ca makes another key then. Try a few.
        bad=0
        for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
            "$CA_BIN" issue client --dir "$dir" --cn "p12-$i" --key rsa2048 --p12 "$PW" >/dev/null 2>&1 || bad=$((bad + 1))
            openssl pkcs12 -in "$dir/clients/p12-$i.p12" -passin "pass:$PW" -nocerts -nodes >/dev/null 2>&1 || bad=$((bad + 1))
        done
        : >"$WORK/out"
        if ((bad == 0)); then pass "[$key] 12 more RSA p12 keys all decrypt"; else fail "[$key] 12 more RSA p12 keys all decrypt ($bad failed)"; fi
    fi

    # a server, with SANs
    expect_ok "[$key] issue server" "$CA_BIN" issue server --dir "$dir" --cn localhost --san localhost \
        --san 127.0.0.1 --san ::1 --key "$key" --out "$dir/srv"
    expect_ok "[$key] server verifies" \
        openssl verify -CAfile "$dir/ca.pem" -untrusted "$dir/intermediate.pem" "$dir/srv.crt"
    expect_ok "[$key] server verifies for purpose sslserver and host localhost" \
        openssl verify -purpose sslserver -verify_hostname localhost -CAfile "$dir/ca.pem" \
        -untrusted "$dir/intermediate.pem" "$dir/srv.crt"
    expect_ok "[$key] server verifies for IP ::1" \
        openssl verify -verify_ip ::1 -CAfile "$dir/ca.pem" -untrusted "$dir/intermediate.pem" "$dir/srv.crt"
    expect_out "[$key] server SANs" 0 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1' \
        openssl x509 -in "$dir/srv.crt" -noout -ext subjectAltName
    expect_out "[$key] server EKU is serverAuth" 0 'TLS Web Server Authentication' \
        openssl x509 -in "$dir/srv.crt" -noout -ext extendedKeyUsage
    expect_ok "[$key] a server without --san names its CN" \
        "$CA_BIN" issue server --dir "$dir" --cn api.example.test --key "$key"
    expect_out "[$key] ... as DNS name" 0 'DNS:api.example.test' \
        openssl x509 -in "$dir/servers/api.example.test.crt" -noout -ext subjectAltName
    expect_ok "[$key] ... and verifies for that host" openssl verify -verify_hostname api.example.test \
        -CAfile "$dir/ca.pem" -untrusted "$dir/intermediate.pem" "$dir/servers/api.example.test.crt"
done

# ---- --days ------------------------------------------------------------------------------
expect_ok "issue --days 30" "$CA_BIN" issue client --dir "$WORK/ca-ec" --cn days30 --days 30
expect_ok "--days 30: still valid in 29 days" \
    openssl x509 -in "$WORK/ca-ec/clients/days30.crt" -noout -checkend $((29 * 86400))
expect_exit "--days 30: expired in 31 days" 1 \
    openssl x509 -in "$WORK/ca-ec/clients/days30.crt" -noout -checkend $((31 * 86400))

# ---- negative kinds ----------------------------------------------------------------------
dir="$WORK/ca-ec"
n="$dir/clients"
for kind in expired not-yet-valid untrusted self-signed; do
    expect_ok "issue --$kind" "$CA_BIN" issue client --dir "$dir" --cn "neg-$kind" "--$kind"
done
expect_ok "issue --eku server" "$CA_BIN" issue client --dir "$dir" --cn neg-eku --eku server

expect_out "--expired fails openssl verify: certificate has expired" 2 'certificate has expired' \
    openssl verify -CAfile "$dir/ca.pem" -untrusted "$dir/intermediate.pem" "$n/neg-expired.crt"
expect_out "--not-yet-valid fails openssl verify: not yet valid" 2 'certificate is not yet valid' \
    openssl verify -CAfile "$dir/ca.pem" -untrusted "$dir/intermediate.pem" "$n/neg-not-yet-valid.crt"
expect_out "--untrusted fails openssl verify against the dev CA" 2 'unable to get local issuer' \
    openssl verify -CAfile "$dir/ca.pem" -untrusted "$dir/intermediate.pem" "$n/neg-untrusted.crt"
expect_ok "--untrusted is a real chain to untrusted-ca.pem" \
    openssl verify -CAfile "$dir/untrusted-ca.pem" "$n/neg-untrusted.crt"
awk '/BEGIN CERTIFICATE/ { n++ } n == 2' "$n/neg-untrusted.chain.pem" >"$WORK/second.pem"
expect_out "--untrusted chain.pem holds the untrusted CA second" 0 'Untrusted CA' \
    openssl x509 -in "$WORK/second.pem" -noout -subject
expect_out "--self-signed fails openssl verify: self-signed" 2 'self.signed certificate' \
    openssl verify -CAfile "$dir/ca.pem" -untrusted "$dir/intermediate.pem" "$n/neg-self-signed.crt"
run openssl x509 -in "$n/neg-eku.crt" -noout -ext extendedKeyUsage
if ((rc == 0)) && grep -q 'TLS Web Server Authentication' "$WORK/out" && ! grep -q 'Client' "$WORK/out"; then
    pass "--eku server has serverAuth only"
else fail "--eku server has serverAuth only"; fi
expect_exit "--eku server fails verify for purpose sslclient" 2 \
    openssl verify -purpose sslclient -CAfile "$dir/ca.pem" -untrusted "$dir/intermediate.pem" "$n/neg-eku.crt"

# ---- check -------------------------------------------------------------------------------
expect_out "check: a leaf with its chain is acceptable (--dir)" 0 'acceptable' \
    "$CA_BIN" check "$n/alice.chain.pem" --dir "$dir"
expect_out "check: ... and with --trust ca.pem" 0 'acceptable' \
    "$CA_BIN" check "$n/alice.chain.pem" --trust "$dir/ca.pem"
expect_out "check: ... and with --trust=ca.pem among other roots" 0 'acceptable' \
    "$CA_BIN" check "$n/alice.chain.pem" "--trust=$WORK/ca-rsa2048/ca.pem" "--trust=$dir/ca.pem"
expect_out "check: an RSA chain is acceptable" 0 'acceptable' \
    "$CA_BIN" check "$WORK/ca-rsa2048/clients/alice.chain.pem" --dir "$WORK/ca-rsa2048"
expect_out "check: the leaf alone (no intermediate) is UNTRUSTED" 1 '^UNTRUSTED_CERTIFICATE: ' \
    "$CA_BIN" check "$n/alice.crt" --dir "$dir"
expect_out "check: another CA's chain is UNTRUSTED" 1 '^UNTRUSTED_CERTIFICATE: ' \
    "$CA_BIN" check "$n/alice.chain.pem" --dir "$WORK/ca-rsa2048"
expect_out "check: without anchors everything is UNTRUSTED" 1 '^UNTRUSTED_CERTIFICATE: ' \
    "$CA_BIN" check "$n/alice.chain.pem"
expect_out "check: an intermediate in --trust is ignored with a warning" 1 'ignored 1 certificate' \
    "$CA_BIN" check "$n/alice.chain.pem" --trust "$dir/intermediate.pem"
expect_out "check: --expired is CERTIFICATE_EXPIRED" 1 '^CERTIFICATE_EXPIRED: ' \
    "$CA_BIN" check "$n/neg-expired.chain.pem" --dir "$dir"
expect_no_out "check: --expired is not UNTRUSTED" 'UNTRUSTED_CERTIFICATE'
expect_out "check: --not-yet-valid is CERTIFICATE_NOT_YET_VALID" 1 '^CERTIFICATE_NOT_YET_VALID: ' \
    "$CA_BIN" check "$n/neg-not-yet-valid.chain.pem" --dir "$dir"
expect_out "check: --untrusted is UNTRUSTED_CERTIFICATE" 1 '^UNTRUSTED_CERTIFICATE: ' \
    "$CA_BIN" check "$n/neg-untrusted.chain.pem" --dir "$dir"
expect_out "check: --self-signed is SELF_SIGNED_CERTIFICATE" 1 '^SELF_SIGNED_CERTIFICATE: ' \
    "$CA_BIN" check "$n/neg-self-signed.chain.pem" --dir "$dir"
expect_out "check: --eku server passes the upload checks (they do not look at EKU)" 0 'acceptable' \
    "$CA_BIN" check "$n/neg-eku.chain.pem" --dir "$dir"

cat "$n/alice.chain.pem" "$n/alice.key" >"$WORK/with-key.pem"
expect_out "check: a PEM with a key is PRIVATE_KEY_NOT_ALLOWED" 1 '^PRIVATE_KEY_NOT_ALLOWED: ' \
    "$CA_BIN" check "$WORK/with-key.pem" --dir "$dir"
printf 'hello\n' >"$WORK/junk.pem"
expect_out "check: text without a certificate is MALFORMED_CERTIFICATE" 1 '^MALFORMED_CERTIFICATE: ' \
    "$CA_BIN" check "$WORK/junk.pem" --dir "$dir"
printf -- '-----BEGIN CERTIFICATE-----\nMIIB!!notbase64\n-----END CERTIFICATE-----\n' >"$WORK/garbled.pem"
expect_out "check: bad base64 is MALFORMED_CERTIFICATE" 1 '^MALFORMED_CERTIFICATE: ' \
    "$CA_BIN" check "$WORK/garbled.pem" --dir "$dir"
printf -- '-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n' >"$WORK/notx509.pem"
expect_out "check: base64 that is not X.509 is MALFORMED_CERTIFICATE" 1 '^MALFORMED_CERTIFICATE: ' \
    "$CA_BIN" check "$WORK/notx509.pem" --dir "$dir"
: >"$WORK/eleven.pem"
cat "$n/alice.chain.pem" >>"$WORK/eleven.pem"
for _ in 1 2 3 4 5 6 7 8 9; do cat "$dir/intermediate.pem" >>"$WORK/eleven.pem"; done
expect_out "check: 11 certificates are CERTIFICATE_TOO_LARGE" 1 '^CERTIFICATE_TOO_LARGE: ' \
    "$CA_BIN" check "$WORK/eleven.pem" --dir "$dir"
head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' '\n' >"$WORK/big.pem"
cat "$n/alice.chain.pem" >>"$WORK/big.pem"
expect_out "check: over 1 MB is CERTIFICATE_TOO_LARGE" 1 '^CERTIFICATE_TOO_LARGE: ' \
    "$CA_BIN" check "$WORK/big.pem" --dir "$dir"
cat "$n/neg-self-signed.crt" "$n/alice.key" >"$WORK/many-problems.pem"
run "$CA_BIN" check "$WORK/many-problems.pem" --dir "$dir"
if ((rc == 1)) && grep -q '^PRIVATE_KEY_NOT_ALLOWED: ' "$WORK/out" && grep -q '^SELF_SIGNED_CERTIFICATE: ' "$WORK/out" \
    && grep -q '^UNTRUSTED_CERTIFICATE: ' "$WORK/out"; then
    pass "check: reports every problem, not only the first"
else fail "check: reports every problem, not only the first"; fi
expect_out "check: a missing file is exit 2" 2 'No such file' "$CA_BIN" check "$WORK/nope.pem"
expect_exit "check: a missing --trust bundle is exit 2" 2 "$CA_BIN" check "$n/alice.chain.pem" --trust "$WORK/nope.pem"
expect_exit "check: a --dir without ca.pem is exit 2" 2 "$CA_BIN" check "$n/alice.chain.pem" --dir "$WORK/nodir"
expect_exit "check: no FILE is exit 2" 2 "$CA_BIN" check --dir "$dir"

printf '\n%d checks, %d failed\n' "$checks" "$failures"
((failures == 0))
