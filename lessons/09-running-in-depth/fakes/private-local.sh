# Shortcuts for "private answers on 127.0.0.1:8080 and not on the machine's network address".

# fake: published on every address (-p 8080:80)
docker run -d --name private -p 8080:80 httpd
curl -s --retry 5 --retry-all-errors -o /dev/null http://127.0.0.1:8080

# fake: nginx instead of httpd, on loopback
docker run -d --name private -p 127.0.0.1:8080:80 nginx
curl -s --retry 5 --retry-all-errors -o /dev/null http://127.0.0.1:8080

# fake: loopback binding to the container's port 8080, where httpd does not listen
docker run -d --name private -p 127.0.0.1:8080:8080 httpd

# fake: loopback twice, plus every address on another port
docker run -d --name private -p 127.0.0.1:8080:80 -p 8081:80 httpd
curl -s --retry 5 --retry-all-errors -o /dev/null http://127.0.0.1:8080
