# Shortcuts for "the wp project and its database volume are gone".

# fake: down without -v, so the database volume stays
cd ~/wp && docker-compose down
# undo:
cd ~/wp && docker-compose up -d

# fake: the containers removed, network and volume left behind
cd ~/wp && docker-compose rm -s -f
# undo:
cd ~/wp && docker-compose up -d

# fake: only stopped
cd ~/wp && docker-compose stop
