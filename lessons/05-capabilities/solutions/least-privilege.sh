docker run -d --name webcap --cap-drop ALL --cap-add CHOWN --cap-add SETGID --cap-add SETUID nginx
