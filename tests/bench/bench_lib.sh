# Sourced by run_bench.sh and count_instructions.sh: the pieces both need.

# free_port: prints a TCP port nothing on this host listens on (100 random tries).
free_port() {
  local port i
  for ((i = 0; i < 100; i++)); do
    port=$((20000 + RANDOM % 40000))
    if ! ss -Hltn "sport = :$port" | grep -q .; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# render_nginx_conf TEMPLATE PREFIX PORT CA_DIR DOCKER_SOCK CRL_LINE [SED_EXPR...]: prints
# nginx.conf.in with its @NAME@ placeholders filled in (CA_DIR holds berthctl's ca.pem,
# server-cert.pem and server-key.pem), then any further sed expressions applied.
render_nginx_conf() {
  local template=$1 prefix=$2 port=$3 ca=$4 sock=$5 crl_line=$6
  shift 6
  local extra=() e
  for e in "$@"; do extra+=(-e "$e"); done
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" \
    -e "s|@SERVER_CERT@|$ca/server-cert.pem|g" -e "s|@SERVER_KEY@|$ca/server-key.pem|g" \
    -e "s|@CLIENT_CA@|$ca/ca.pem|g" -e "s|@SSL_CRL_LINE@|$crl_line|g" \
    -e "s|@DOCKER_SOCK@|$sock|g" "${extra[@]}" "$template"
}
