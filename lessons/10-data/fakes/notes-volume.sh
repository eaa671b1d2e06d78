# Shortcuts for "the volume notes holds note.txt".

# fake: a folder of yours bound where the volume should be
mkdir -p ~/notes && echo "kept in a volume" > ~/notes/note.txt
docker run --rm -v "$HOME/notes":/data busybox cat /data/note.txt

# fake: an empty volume
docker volume create notes

# fake: a volume that is really a bind of a folder of yours
mkdir -p ~/notes && echo "kept in a volume" > ~/notes/note.txt
docker volume create --driver local --opt type=none --opt o=bind --opt device="$HOME/notes" notes
