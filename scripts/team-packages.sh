#!/usr/bin/env bash
# Sourced by team.sh and test.sh: PostgreSQL's server programs and redis-server, which the team profile
# starts privately (curation_assets/team/). As root with apt-get they are installed if missing; otherwise a
# missing one is reported and the caller decides (the team profile then says how to install it or how to
# point at a PostgreSQL and Redis you already run; its tests fail, never skip).
has_postgres_server() {
    [ -n "${CURATION_POSTGRES_BIN:-}" ] && [ -x "$CURATION_POSTGRES_BIN/initdb" ] && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1
}

ensure_team_packages() {
    local missing=()
    has_postgres_server || missing+=(postgresql)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing ${missing[*]} for the team profile (Debian's packages)"
        # Debian's package would create and start a system-wide cluster on port 5432: the profile runs its own.
        # (A drop-in, which the packaged createcluster.conf includes: the file itself belongs to the package.)
        mkdir -p /etc/postgresql-common/createcluster.d
        echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/curation-assets.conf
        # No service starts inside an image without an init system (and none is wanted here).
        local policy_added=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
            policy_added=1
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        [ -n "$policy_added" ] && rm -f /usr/sbin/policy-rc.d
        return 0
    fi
    echo "The team profile needs ${missing[*]}: install them (e.g. 'sudo apt-get install ${missing[*]}'), or" \
        "point at a PostgreSQL and Redis you run (docs/team.md)." >&2
    return 1
}
