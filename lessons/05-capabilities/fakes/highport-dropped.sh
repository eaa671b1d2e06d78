# Shortcuts for "highport runs without CAP_NET_BIND_SERVICE".

# fake: httpd on 8080 with the default capabilities
docker run -d --name highport busybox httpd -f -p 8080

# fake: the capability dropped from a sleep, not from httpd
docker run -d --name highport --cap-drop NET_BIND_SERVICE busybox sleep 1000

# fake: created with the flag but never started
docker create --name highport --cap-drop NET_BIND_SERVICE busybox httpd -f -p 8080
