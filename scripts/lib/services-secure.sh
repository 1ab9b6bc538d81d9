# shellcheck shell=bash
# The secured profile of scripts/services (sourced by it; uses its helpers):
#   kafka-secure  a second single-node Kafka (own data dir and ports, same jars) with
#                 SASL_SSL + SCRAM-SHA-512 on $SECURE_SASL_PORT and SSL with required
#                 client certificates (mTLS) on $SECURE_SSL_PORT; the controller listener
#                 is mTLS too; StandardAuthorizer, deny by default; super users: the
#                 broker (its certificate) and `admin` (SCRAM).
#   s3-tls        a second S3Proxy (own data dir) serving HTTPS only, on $S3_TLS_PORT.
# A second broker rather than extra listeners on the shared one: turning authorization
# on there would break every test and person using it, and changing its listeners
# means restarting it under them.
#
# TLS material (a throw-away CA, the broker's certificate, client certificates, and a
# second "rogue" CA for negative tests) is generated once with openssl/keytool into
# $TLS_DIR and regenerated when it expires within 30 days.
#
# Principals: SCRAM users are created at format time (StorageTool --add-scram);
# ssl.principal.mapping.rules maps a certificate's CN to the user name, so the worker's
# SCRAM user and its client certificate (CN=guardstream) are the same principal,
# User:guardstream, with one set of ACLs.

SECURE_SASL_PORT=${GUARDSTREAM_SECURE_KAFKA_SASL_PORT:-9192}
SECURE_SSL_PORT=${GUARDSTREAM_SECURE_KAFKA_SSL_PORT:-9193}
SECURE_CONTROLLER_PORT=${GUARDSTREAM_SECURE_KAFKA_CONTROLLER_PORT:-9194}
S3_TLS_PORT=${GUARDSTREAM_S3_TLS_PORT:-9443}
SECURE_ADMIN_USER=admin
SECURE_ADMIN_PASSWORD=${GUARDSTREAM_SECURE_ADMIN_PASSWORD:-admin-secret}
SECURE_USER=guardstream
SECURE_PASSWORD=${GUARDSTREAM_SECURE_KAFKA_PASSWORD:-guardstream-scram-secret}
TLS_DIR=${GUARDSTREAM_TLS_DIR:-$CACHE_DIR/tls}
TLS_STORE_PASSWORD=${GUARDSTREAM_TLS_STORE_PASSWORD:-guardstream-tls}

KSEC_DIR=$DATA_DIR/kafka-secure
KSEC_PID=$KSEC_DIR/kafka.pid
KSEC_LOG=$KSEC_DIR/server.log
KSEC_OUT=$KSEC_DIR/kafka.out
KSEC_CONF=$KSEC_DIR/server.properties
KSEC_ADMIN_CONF=$KSEC_DIR/admin.properties  # the super user's client config (kafka-acls)
KAFKA_TOOLS_HOME=$CACHE_DIR/kafka-tools-$KAFKA_VERSION

S3TLS_DIR=$DATA_DIR/s3-tls
S3TLS_PID=$S3TLS_DIR/s3proxy.pid
S3TLS_LOG=$S3TLS_DIR/s3proxy.log
S3TLS_CONF=$S3TLS_DIR/s3proxy.conf

# ---------------------------------------------------------------------------
# TLS material
# ---------------------------------------------------------------------------

# Certificate valid for at least 30 more days?
tls_fresh() { # pem
    [[ -f $1 ]] && openssl x509 -checkend $((30 * 86400)) -noout -in "$1" >/dev/null 2>&1
}

tls_ca() { # dir name subject
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "$3" \
        -keyout "$1/$2.key" -out "$1/$2.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

tls_leaf() { # dir name cn ca extensions
    local dir=$1 name=$2 cn=$3 ca=$4 ext=$5
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" \
        -keyout "$dir/$name.key" -out "$dir/$name.csr"
    printf '%b\n' "$ext" >"$dir/$name.ext"
    openssl x509 -req -days 3650 -in "$dir/$name.csr" -CA "$dir/$ca.pem" -CAkey "$dir/$ca.key" \
        -CAcreateserial -out "$dir/$name.pem" -extfile "$dir/$name.ext"
    rm -f "$dir/$name.csr" "$dir/$name.ext"
}

# ca.pem            the CA the broker and S3 certificates chain to (what clients trust)
# broker.p12        the broker's key and certificate (CN=kafka-broker, SAN 127.0.0.1,
#                   localhost), PKCS12; also S3Proxy's keystore
# truststore.p12    ca.pem as a Java truststore (the broker verifies client certs with it)
# client.pem/.key   CN=guardstream, signed by the CA (mTLS)
# rogue-ca.pem      an unrelated CA (a client that trusts it does not trust the broker)
# rogue-client.*    CN=guardstream signed by the rogue CA (the broker must reject it)
tls_material() {
    if [[ -f $TLS_DIR/.complete ]] && tls_fresh "$TLS_DIR/ca.pem" && tls_fresh "$TLS_DIR/broker.pem" \
        && tls_fresh "$TLS_DIR/client.pem"; then
        return 0
    fi
    command -v openssl >/dev/null || die "openssl not found (needed once to make test certificates)"
    command -v keytool >/dev/null || die "keytool not found (comes with the JDK)"
    log "tls: generating a test CA and certificates into $TLS_DIR"
    local tmp="$TLS_DIR.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    (
        umask 077
        set -e
        tls_ca "$tmp" ca "/CN=guardstream test CA"
        tls_leaf "$tmp" broker kafka-broker ca \
            'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE'
        tls_leaf "$tmp" client "$SECURE_USER" ca \
            'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE'
        tls_ca "$tmp" rogue-ca "/CN=rogue test CA"
        tls_leaf "$tmp" rogue-client "$SECURE_USER" rogue-ca \
            'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE'
        openssl pkcs12 -export -name broker -in "$tmp/broker.pem" -inkey "$tmp/broker.key" \
            -certfile "$tmp/ca.pem" -out "$tmp/broker.p12" -passout "pass:$TLS_STORE_PASSWORD"
        keytool -importcert -noprompt -alias ca -file "$tmp/ca.pem" -keystore "$tmp/truststore.p12" \
            -storetype PKCS12 -storepass "$TLS_STORE_PASSWORD"
        rm -f "$tmp"/*.srl
        touch "$tmp/.complete"
    ) >"$tmp.log" 2>&1 || { cat "$tmp.log" >&2; rm -rf "$tmp"; die "tls: certificate generation failed"; }
    rm -f "$tmp.log"
    chmod 755 "$tmp"
    chmod 644 "$tmp"/*.pem
    rm -rf "$TLS_DIR" && mv "$tmp" "$TLS_DIR"
}

# ---------------------------------------------------------------------------
# kafka-secure
# ---------------------------------------------------------------------------

ksec_write_config() {
    mkdir -p "$KSEC_DIR/data"
    (umask 077 && cat >"$KSEC_CONF" <<EOF
# Generated by scripts/services (secure profile); edits are overwritten on the next start.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$SECURE_CONTROLLER_PORT
listeners=SASL_SSL://$HOST:$SECURE_SASL_PORT,SSL://$HOST:$SECURE_SSL_PORT,CONTROLLER://$HOST:$SECURE_CONTROLLER_PORT
advertised.listeners=SASL_SSL://$HOST:$SECURE_SASL_PORT,SSL://$HOST:$SECURE_SSL_PORT
controller.listener.names=CONTROLLER
# The broker talks to itself and to its controller with its own certificate (mTLS):
# no PLAINTEXT listener anywhere.
inter.broker.listener.name=SSL
listener.security.protocol.map=CONTROLLER:SSL,SASL_SSL:SASL_SSL,SSL:SSL
log.dirs=$KSEC_DIR/data
num.partitions=1
auto.create.topics.enable=false

ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/broker.p12
ssl.keystore.password=$TLS_STORE_PASSWORD
ssl.key.password=$TLS_STORE_PASSWORD
ssl.truststore.type=PKCS12
ssl.truststore.location=$TLS_DIR/truststore.p12
ssl.truststore.password=$TLS_STORE_PASSWORD
listener.name.ssl.ssl.client.auth=required
listener.name.controller.ssl.client.auth=required
# CN=guardstream -> User:guardstream, the same principal as the SCRAM user.
ssl.principal.mapping.rules=RULE:^CN=([^,]+)\$/\$1/,DEFAULT

sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:kafka-broker;User:$SECURE_ADMIN_USER

offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
)
    kafka_log4j2_xml "$KSEC_LOG" >"$KSEC_DIR/log4j2.xml"
}

# Java clients' config for the super user over SASL_SSL (kafka-acls --command-config).
ksec_write_admin_config() {
    (umask 077 && cat >"$KSEC_ADMIN_CONF" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$SECURE_ADMIN_USER" password="$SECURE_ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
EOF
)
}

# The real kafka-acls (org.apache.kafka.tools.AclCommand, in kafka-tools since 4.0) for
# checking the README's ACL lines. Only that jar: its dependencies that matter are the
# broker's (on the classpath below); the rest (Connect, Jersey, ...) is excluded.
kafka_tools_resolve() {
    resolve_jars "$KAFKA_TOOLS_HOME" "$(cat <<EOF
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version>
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions></dependency>
EOF
)"
}

# scripts/services kafka-acls ARGS...: kafka-acls against the secure broker as the super
# user (--bootstrap-server and --command-config are added).
cmd_kafka_acls() {
    check_java
    kafka_resolve
    kafka_tools_resolve
    tls_material
    mkdir -p "$KSEC_DIR"
    ksec_write_admin_config
    exec java -Xms32m -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
        -Dlog4j2.configurationFile="$KSEC_DIR/log4j2.xml" \
        -cp "$KAFKA_HOME/lib/*:$KAFKA_TOOLS_HOME/lib/*" org.apache.kafka.tools.AclCommand \
        --bootstrap-server "$HOST:$SECURE_SASL_PORT" --command-config "$KSEC_ADMIN_CONF" "$@"
}

# SCRAM credentials are written at format time: a change of the passwords re-formats.
ksec_format_if_needed() {
    local users
    users=$(printf '%s\n' "$SECURE_ADMIN_USER:$SECURE_ADMIN_PASSWORD" "$SECURE_USER:$SECURE_PASSWORD" | sha256sum | cut -c1-16)
    if [[ -f $KSEC_DIR/data/meta.properties && $(cat "$KSEC_DIR/users.sha" 2>/dev/null) == "$users" ]]; then
        return 0
    fi
    rm -rf "${KSEC_DIR:?}/data" && mkdir -p "$KSEC_DIR/data"
    local cluster_id
    cluster_id=$(java -cp "$KAFKA_HOME/lib/*" kafka.tools.StorageTool random-uuid)
    log "kafka-secure: formatting storage with SCRAM users $SECURE_ADMIN_USER, $SECURE_USER"
    java -cp "$KAFKA_HOME/lib/*" -Dlog4j2.configurationFile="$KSEC_DIR/log4j2.xml" \
        kafka.tools.StorageTool format -t "$cluster_id" -c "$KSEC_CONF" --standalone \
        --add-scram "SCRAM-SHA-512=[name=$SECURE_ADMIN_USER,password=$SECURE_ADMIN_PASSWORD]" \
        --add-scram "SCRAM-SHA-512=[name=$SECURE_USER,password=$SECURE_PASSWORD]" \
        >>"$KSEC_OUT" 2>&1 || { tail -n 20 "$KSEC_OUT" >&2; die "kafka-secure: storage format failed"; }
    echo "$users" >"$KSEC_DIR/users.sha"
}

# Metadata over mTLS with the client certificate: ready once the broker lists itself
# (a Metadata request for no topics needs no ACL).
ksec_probe() {
    port_open "$SECURE_SSL_PORT" || return 1
    python3 - "$HOST" "$SECURE_SSL_PORT" "$TLS_DIR" <<'PY' 2>/dev/null
import socket, ssl, struct, sys
host, port, tls = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=f"{tls}/ca.pem")
ctx.load_cert_chain(f"{tls}/client.pem", f"{tls}/client.key")
client = b"guardstream-services"
req = struct.pack(">hhih", 3, 4, 7, len(client)) + client + struct.pack(">ib", 0, 0)
with socket.create_connection((host, port), timeout=3) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
    s.sendall(struct.pack(">i", len(req)) + req)
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit(1)
        buf += chunk
_, corr, _, nbrokers = struct.unpack(">iiii", buf[:16])
sys.exit(0 if corr == 7 and nbrokers > 0 else 1)
PY
}

kafka_secure_start() {
    clear_stale_pid "$KSEC_PID" "$KSEC_CONF"
    if pid_is_ours "$KSEC_PID" "$KSEC_CONF"; then
        KSEC_WAS_RUNNING=1
        return 0
    fi
    KSEC_WAS_RUNNING=
    for p in "$SECURE_SASL_PORT" "$SECURE_SSL_PORT" "$SECURE_CONTROLLER_PORT"; do
        port_open "$p" && die "kafka-secure: port $p is in use by a process this script did not start"
    done
    command -v python3 >/dev/null || die "python3 not found (used to check that the broker answers)"
    check_java
    kafka_resolve
    tls_material
    ksec_write_config
    ksec_write_admin_config
    kafka_tools_resolve
    ksec_format_if_needed
    log "kafka-secure: starting on $HOST:$SECURE_SASL_PORT (SASL_SSL) and $HOST:$SECURE_SSL_PORT (mTLS)"
    mark_logs "$KSEC_LOG" "$KSEC_OUT"
    spawn "$KSEC_PID" "$KSEC_OUT" java -Xms256m -Xmx512m -XX:+UseG1GC \
        -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KSEC_DIR/log4j2.xml" \
        -cp "$KAFKA_HOME/lib/*" kafka.Kafka "$KSEC_CONF"
}

kafka_secure_wait() {
    wait_ready kafka-secure "$KSEC_PID" "$KSEC_CONF" ksec_probe "$KSEC_LOG" "$KSEC_OUT"
    log "kafka-secure: ${KSEC_WAS_RUNNING:+already }ready (pid $(<"$KSEC_PID")) on $HOST:$SECURE_SASL_PORT, $HOST:$SECURE_SSL_PORT"
}

kafka_secure_down() {
    stop_pid kafka-secure "$KSEC_PID" "$KSEC_CONF" 30
}

kafka_secure_status() {
    clear_stale_pid "$KSEC_PID" "$KSEC_CONF" 2>/dev/null
    if pid_is_ours "$KSEC_PID" "$KSEC_CONF" && ksec_probe; then
        echo "kafka-secure: up (pid $(<"$KSEC_PID"), SASL_SSL $HOST:$SECURE_SASL_PORT, mTLS $HOST:$SECURE_SSL_PORT)"
    elif pid_is_ours "$KSEC_PID" "$KSEC_CONF"; then
        echo "kafka-secure: starting or unhealthy (pid $(<"$KSEC_PID"))"
        return 1
    else
        echo "kafka-secure: down"
        return 1
    fi
}

# ---------------------------------------------------------------------------
# s3-tls
# ---------------------------------------------------------------------------

s3tls_write_config() {
    mkdir -p "$S3TLS_DIR/blobs"
    (umask 077 && cat >"$S3TLS_CONF" <<EOF
# Generated by scripts/services (secure profile); edits are overwritten on the next start.
s3proxy.secure-endpoint=https://$HOST:$S3_TLS_PORT
s3proxy.keystore-path=$TLS_DIR/broker.p12
s3proxy.keystore-password=$TLS_STORE_PASSWORD
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=$S3_ACCESS_KEY
s3proxy.credential=$S3_SECRET_KEY
jclouds.provider=filesystem-nio2
jclouds.filesystem.basedir=$S3TLS_DIR/blobs
jclouds.identity=$S3_ACCESS_KEY
jclouds.credential=$S3_SECRET_KEY
EOF
)
    s3_logback_xml >"$S3TLS_DIR/logback.xml"
}

s3tls_probe() {
    local code
    code=$(curl -s -o /dev/null -m 3 --cacert "$TLS_DIR/ca.pem" -w '%{http_code}' \
        "https://$HOST:$S3_TLS_PORT/" 2>/dev/null) || true
    [[ -n $code && $code != 000 ]]
}

s3_tls_start() {
    clear_stale_pid "$S3TLS_PID" "$S3TLS_CONF"
    if pid_is_ours "$S3TLS_PID" "$S3TLS_CONF"; then
        S3TLS_WAS_RUNNING=1
        return 0
    fi
    S3TLS_WAS_RUNNING=
    port_open "$S3_TLS_PORT" && die "s3-tls: port $S3_TLS_PORT is in use by a process this script did not start"
    command -v curl >/dev/null || die "curl not found (used to check that S3Proxy answers)"
    check_java
    s3_resolve
    tls_material
    s3tls_write_config
    log "s3-tls: starting S3Proxy $S3PROXY_VERSION on https://$HOST:$S3_TLS_PORT"
    mark_logs "$S3TLS_LOG"
    spawn "$S3TLS_PID" "$S3TLS_LOG" java -Xms64m -Xmx256m \
        -Djava.awt.headless=true \
        -Dlogback.configurationFile="$S3TLS_DIR/logback.xml" \
        -cp "$S3_HOME/lib/*" org.gaul.s3proxy.Main --properties "$S3TLS_CONF"
}

s3_tls_wait() {
    wait_ready s3-tls "$S3TLS_PID" "$S3TLS_CONF" s3tls_probe "$S3TLS_LOG"
    log "s3-tls: ${S3TLS_WAS_RUNNING:+already }ready (pid $(<"$S3TLS_PID")) on https://$HOST:$S3_TLS_PORT"
}

s3_tls_down() {
    stop_pid s3-tls "$S3TLS_PID" "$S3TLS_CONF" 10
}

s3_tls_status() {
    clear_stale_pid "$S3TLS_PID" "$S3TLS_CONF" 2>/dev/null
    if pid_is_ours "$S3TLS_PID" "$S3TLS_CONF" && s3tls_probe; then
        echo "s3-tls: up (pid $(<"$S3TLS_PID"), https://$HOST:$S3_TLS_PORT)"
    elif pid_is_ours "$S3TLS_PID" "$S3TLS_CONF"; then
        echo "s3-tls: starting or unhealthy (pid $(<"$S3TLS_PID"))"
        return 1
    else
        echo "s3-tls: down"
        return 1
    fi
}

secure_env() {
    cat <<EOF
export GUARDSTREAM_SECURE_KAFKA_SASL_SERVERS=$HOST:$SECURE_SASL_PORT
export GUARDSTREAM_SECURE_KAFKA_SSL_SERVERS=$HOST:$SECURE_SSL_PORT
export GUARDSTREAM_SECURE_KAFKA_USER=$SECURE_USER
export GUARDSTREAM_SECURE_KAFKA_PASSWORD=$SECURE_PASSWORD
export GUARDSTREAM_SECURE_ADMIN_USER=$SECURE_ADMIN_USER
export GUARDSTREAM_SECURE_ADMIN_PASSWORD=$SECURE_ADMIN_PASSWORD
export GUARDSTREAM_SECURE_TLS_DIR=$TLS_DIR
export GUARDSTREAM_SECURE_S3_ENDPOINT_URL=https://$HOST:$S3_TLS_PORT
EOF
}
