# Sourced by benches/run.sh and benches/startup-order.sh: the state the helper reads when it is
# measured or profiled. Expects ROOT, WORK, ICR (the helper) and FAKE_IAM; sets the inputs in
# $WORK, BASE_ENV, ICR_ENV (no config file, three stored logins), ICR_ENV_KEY (an API key in the
# environment) and BEARER_ENV (a warm bearer cache). The cache is filled by one exchange at the
# fake IAM on loopback, which is stopped before this returns; nothing else touches the network.

printf 'us.icr.io\n' >"$WORK/in-icr"
printf 'de.icr.io\n' >"$WORK/in-icr-stored"
printf 'docker.io\n' >"$WORK/in-foreign"
printf 'unused\n' >"$WORK/in-list"
# The store goes to a registry no other cell reads: a login stored for us.icr.io would take
# the place of the cached bearer token there (a stored login is the first source).
printf '{"ServerURL":"au.icr.io","Username":"iamapikey","Secret":"bench-stored-key"}' >"$WORK/in-store"

BASE_ENV=(PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8)

ICR_HOME="$WORK/icr"
mkdir -p "$ICR_HOME"
ICR_ENV=("${BASE_ENV[@]}" HOME="$ICR_HOME")
ICR_ENV_KEY=("${ICR_ENV[@]}" IBMCLOUD_API_KEY=bench-api-key)
for host in de.icr.io jp.icr.io uk.icr.io; do
    printf '{"ServerURL":"%s","Username":"iamapikey","Secret":"bench-%s"}' "$host" "$host" |
        env -i "${ICR_ENV[@]}" "$ICR" store
done

IAM_URL_FILE="$WORK/iam-url"
"$FAKE_IAM" --any-apikey --lifetime 3600 --port-file "$IAM_URL_FILE" --max-seconds 120 >/dev/null &
IAM_PID=$!
for _ in $(seq 100); do [ -s "$IAM_URL_FILE" ] && break; sleep 0.05; done
BEARER_ENV=("${ICR_ENV[@]}" IBMCLOUD_API_KEY=bench-api-key DOCKER_CREDENTIAL_ICR_MODE=iambearer
    DOCKER_CREDENTIAL_ICR_IAM_ENDPOINT="$(cat "$IAM_URL_FILE")")
env -i "${BEARER_ENV[@]}" "$ICR" get <"$WORK/in-icr" >/dev/null
kill "$IAM_PID"
wait "$IAM_PID" 2>/dev/null || true
IAM_PID=
env -i "${BEARER_ENV[@]}" "$ICR" get <"$WORK/in-icr" | grep -q '"Username":"iambearer"' ||
    { printf 'the cached bearer get failed with the fake IAM stopped\n' >&2; exit 1; }
