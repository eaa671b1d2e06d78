# Shortcuts for "cow shows an added, a changed and a deleted file".

# fake: the changes baked into an image by commit; cow itself changed nothing
docker run -d --name cowmaker nginx
docker exec cowmaker sh -c 'echo "# edited" >> /etc/nginx/nginx.conf; rm /usr/share/nginx/html/index.html; touch /newfile'
docker commit cowmaker cowimage
docker run -d --name cow cowimage

# fake: only a file added
docker run -d --name cow nginx
docker exec cow touch /newfile
