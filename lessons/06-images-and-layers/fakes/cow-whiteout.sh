# Shortcuts for "cow's upper directory holds a whiteout for sites-enabled/default".

# fake: the file emptied instead of deleted (a copy-up, not a whiteout)
docker exec cow sh -c ': > /etc/nginx/sites-enabled/default'
# undo:
docker run --rm nginx cat /etc/nginx/sites-enabled/default | docker exec -i cow sh -c 'cat > /etc/nginx/sites-enabled/default'

# fake: the file deleted in another nginx container
docker run -d --name cow2 nginx
docker exec cow2 rm /etc/nginx/sites-enabled/default

# fake: a different file deleted in cow
docker exec cow sh -c 'cp /etc/nginx/nginx.conf /tmp/keep && rm /etc/nginx/nginx.conf'
# undo:
docker exec cow mv /tmp/keep /etc/nginx/nginx.conf
