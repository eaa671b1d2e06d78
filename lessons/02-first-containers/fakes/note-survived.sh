# Shortcuts for "web is running again and still has /tmp/note".

# fake: the note written, but web never stopped and started
docker exec web sh -c 'echo "written before the stop" > /tmp/note'
# undo:
docker exec web rm -f /tmp/note

# fake: restarted first, note written afterwards
docker restart web
docker exec web sh -c 'echo "written before the stop" > /tmp/note'
# undo:
docker exec web rm -f /tmp/note

# fake: the note copied in from outside, no restart
echo "written before the stop" > /tmp/berth-note
docker cp /tmp/berth-note web:/tmp/note
# undo:
docker exec web rm -f /tmp/note
rm -f /tmp/berth-note
