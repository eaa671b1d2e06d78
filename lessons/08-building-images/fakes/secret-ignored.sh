# Shortcuts for "ignored has notes.txt but not secret.txt".

# fake: the secret deleted from the folder instead of ignored
rm ignore/secret.txt
docker build -q -t ignored ignore

# fake: a Dockerfile that copies only notes.txt
printf 'FROM busybox\nCOPY notes.txt /data/\n' > /tmp/Dockerfile.notes
docker build -q -t ignored -f /tmp/Dockerfile.notes ignore
rm /tmp/Dockerfile.notes

# fake: a committed container with only notes.txt
docker run --name ign busybox sh -c 'mkdir /data && echo notes > /data/notes.txt'
docker commit ign ignored
