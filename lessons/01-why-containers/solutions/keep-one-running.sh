docker run -d --name timer debian sleep 600
