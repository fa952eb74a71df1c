#!/usr/bin/env bash
# Makes the certificates of `lxcfs-ts webhook` with openssl: a CA, and a serving certificate from it for
# the webhook's Service. Prints the CA bundle (base64, one line) on stdout, for the caBundle of
# deploy/kubernetes/webhook-configuration.yaml; says on stderr what to do with the files.
#
#   scripts/webhook-cert.sh [--out DIR] [--namespace NS] [--service NAME] [--days N] [--san SAN]...
#
#   --out DIR        where to write ca.crt, ca.key, tls.crt, tls.key (default ./lxcfs-ts-webhook-certs)
#   --namespace NS   the webhook's namespace (default kube-system)
#   --service NAME   the webhook's Service (default lxcfs-ts-webhook)
#   --days N         validity of the serving certificate (default 365; the CA's is 10 years)
#   --san SAN        an extra subjectAltName, e.g. IP:127.0.0.1 or DNS:webhook.example (repeatable)
#
# Run it again with the same --out to renew the serving certificate: the CA in DIR is kept, so the
# caBundle stays valid, and the webhook picks the new files up without a restart once the Secret is
# updated (kubelet refreshes a Secret volume within about a minute).
#
# cert-manager users need none of this: see the commented Certificate in
# deploy/kubernetes/webhook-deployment.yaml and the cert-manager.io/inject-ca-from annotation in
# deploy/kubernetes/webhook-configuration.yaml.
set -euo pipefail

out=./lxcfs-ts-webhook-certs
namespace=kube-system
service=lxcfs-ts-webhook
days=365
extra_sans=()
fail() { echo "webhook-cert.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out|--namespace|--service|--days|--san) [ $# -ge 2 ] || fail "$1 needs a value" ;;&
    --out) out=$2; shift 2 ;;
    --namespace) namespace=$2; shift 2 ;;
    --service) service=$2; shift 2 ;;
    --days) [[ $2 =~ ^[1-9][0-9]*$ ]] || fail "--days must be a positive whole number, not '$2'"; days=$2; shift 2 ;;
    --san) extra_sans+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown argument '$1' (see --help)" ;;
  esac
done
command -v openssl >/dev/null || fail "openssl is not installed (apt-get install openssl)"

mkdir -p "$out"
umask 077
if [ ! -s "$out/ca.crt" ] || [ ! -s "$out/ca.key" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=lxcfs-ts webhook CA" \
    -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null || fail "openssl could not make the CA"
fi

# The API server calls the Service as <service>.<namespace>.svc and checks that name.
host="$service.$namespace.svc"
sans="DNS:$service,DNS:$service.$namespace,DNS:$host,DNS:$host.cluster.local"
for san in "${extra_sans[@]}"; do sans+=",$san"; done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=critical,CA:FALSE\n' "$sans" > "$work/ext"
openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$host" -keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null \
  || fail "openssl could not make the serving key"
openssl x509 -req -sha256 -days "$days" -in "$work/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
  -set_serial "0x$(openssl rand -hex 16)" -extfile "$work/ext" -out "$work/tls.crt" 2>/dev/null \
  || fail "openssl could not sign the serving certificate with $out/ca.crt"
# Renames within one directory are atomic: a reader sees the old or the new file, never half of one.
cp "$work/tls.key" "$out/.tls.key.new" && mv -f "$out/.tls.key.new" "$out/tls.key"
cp "$work/tls.crt" "$out/.tls.crt.new" && mv -f "$out/.tls.crt.new" "$out/tls.crt"

cat >&2 <<EOF
webhook-cert.sh: wrote $out/ca.crt, ca.key (keep it to renew), tls.crt, tls.key for $host
  kubectl -n $namespace create secret tls lxcfs-ts-webhook-tls --cert=$out/tls.crt --key=$out/tls.key --dry-run=client -o yaml | kubectl apply -f -
  then put the caBundle printed below into deploy/kubernetes/webhook-configuration.yaml (both webhooks), e.g.
  sed -i "s|caBundle: .*|caBundle: \$(base64 -w0 $out/ca.crt)|" deploy/kubernetes/webhook-configuration.yaml
EOF
base64 -w0 "$out/ca.crt"
echo
