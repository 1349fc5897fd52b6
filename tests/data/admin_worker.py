"""A second process that edits the FAQ the way the web admin does.

    python admin_worker.py DATABASE_URL CHROMA_PATH

Prints `ready`, then reads one command a line from standard input and answers
each with one line:

    add QUESTION        -> added ID
    edit ID QUESTION    -> ok
    delete ID           -> ok

Every change goes to the database and the shared index, as the admin's views
do, so the test process sees what another process wrote.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from database import Database  # noqa: E402
from embeddings import E5Embedder  # noqa: E402
from faq_search import FAQSearch  # noqa: E402


def main(url: str, chroma_path: str) -> int:
    database = Database(url)
    search = FAQSearch(database, E5Embedder(), chroma_path=chroma_path)
    print("ready", flush=True)

    for line in sys.stdin:
        command, _, rest = line.strip().partition(" ")
        if command == "add":
            faq = database.add_faq(rest, "Ответ из другого процесса.", "Кадры")
            reply = f"added {faq.id}"
        elif command == "edit":
            faq_id, _, question = rest.partition(" ")
            database.update_faq(int(faq_id), question=question)
            reply = "ok"
        elif command == "delete":
            database.delete_faq(int(rest))
            reply = "ok"
        else:
            reply = f"unknown command {command!r}"
        search.ensure_fresh()
        print(reply, flush=True)

    search.close()
    database.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
