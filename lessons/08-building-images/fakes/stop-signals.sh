# Shortcuts for "docker stop waited out sig-shell's shell, and sig-exec stopped at once".

# fake: both killed instead of stopped
docker build -q -t sig:shell -f signals/Dockerfile.shell signals
docker build -q -t sig:exec -f signals/Dockerfile.exec signals
docker run -d --name sig-shell sig:shell
docker run -d --name sig-exec sig:exec
docker kill sig-shell sig-exec

# fake: sig-shell stopped without its grace period (-t 0)
docker build -q -t sig:shell -f signals/Dockerfile.shell signals
docker build -q -t sig:exec -f signals/Dockerfile.exec signals
docker run -d --name sig-shell sig:shell
docker run -d --name sig-exec sig:exec
docker stop -t 0 sig-shell
docker stop sig-exec

# fake: SIGTERM sent to sig-exec by hand with docker kill, not docker stop
docker build -q -t sig:shell -f signals/Dockerfile.shell signals
docker build -q -t sig:exec -f signals/Dockerfile.exec signals
docker run -d --name sig-shell sig:shell
docker run -d --name sig-exec sig:exec
docker stop sig-shell
docker kill -s TERM sig-exec
docker wait sig-exec

# fake: both containers from the exec-form image
docker build -q -t sig:exec -f signals/Dockerfile.exec signals
docker run -d --name sig-shell sig:exec
docker run -d --name sig-exec sig:exec
docker stop sig-shell sig-exec
