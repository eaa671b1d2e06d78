# Shortcuts for "notes-backup.tgz holds note.txt".

# fake: a tarball made by hand outside any container
mkdir -p /tmp/bk/notes && echo "kept in a volume" > /tmp/bk/notes/note.txt
tar -czf ~/notes-backup.tgz -C /tmp/bk notes
rm -r /tmp/bk

# fake: copied out of mounted with docker cp
docker cp mounted:/notes - | gzip > ~/notes-backup.tgz

# fake: an empty note in a tarball
docker run --rm busybox sh -c 'mkdir /notes && touch /notes/note.txt && tar -czf - /notes' > ~/notes-backup.tgz
