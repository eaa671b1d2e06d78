# Shortcuts for "an interactive shell is open inside web".

# fake: a command run with docker exec, no shell left open
docker exec web sh -c 'cat /etc/nginx/sites-enabled/default'

# fake: a shell with a terminal, but detached (-dit): nobody is attached to it
docker exec -dit web sh
# undo:
docker exec web sh -c 'for p in /proc/[0-9]*; do case "$(readlink $p/fd/0)" in /dev/pts/*) kill -9 "${p#/proc/}";; esac; done'

# fake: a long-running exec in the background, without -it
docker exec -d web sh -c 'sleep 600'
# undo:
docker exec web sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = sleep ] && kill -9 "${p#/proc/}"; done; true'
