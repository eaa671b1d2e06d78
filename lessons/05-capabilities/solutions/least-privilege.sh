docker run -d --name webcap --cap-drop ALL --cap-add NET_BIND_SERVICE busybox httpd -f -p 80
