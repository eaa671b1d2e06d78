# Shortcuts for "layers:split is about 20 MB larger than layers:joined".

# fake: the file simply kept in one RUN
printf 'FROM busybox\nRUN dd if=/dev/urandom of=/scratch bs=1M count=20\n' | docker build -q -t layers:split -
docker build -q -t layers:joined layers

# fake: busybox tagged as joined
docker build -q -t layers:split -f layers/Dockerfile.split layers
docker tag busybox layers:joined

# fake: the split image made by commit, which keeps the file
docker run --name big busybox dd if=/dev/urandom of=/scratch bs=1M count=20
docker commit big layers:split
docker build -q -t layers:joined layers
