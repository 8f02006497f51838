"""The web chat's history API (/ui/api/, src/web/ui_api.cpp) through a running `hearth serve`:
every endpoint — chats created, listed (keyset pages, search with snippets), read, patched,
deleted; messages added as branches and deleted with their subtree; export and import — and
the error answers: malformed JSON, wrong types, unknown ids, wrong methods, oversize fields,
bad cursors, all JSON {"error"} with a 4xx. Also: the database is created only on first use, in
the test's own HEARTH_UI_DB; a path that cannot be opened is a 503 on /ui/api only; GET / still
answers `Ollama is running` to a client that does not ask for HTML."""
import http.client
import json
import os
import stat
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from harness import Checker  # noqa: E402
from serve_util import Server  # noqa: E402


def call(s, method, path, body=None, raw=None, headers=None):
    """(status, parsed JSON or None, headers dict)."""
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    c.request(method, path, body=data, headers=headers or {})
    r = c.getresponse()
    text = r.read().decode("utf-8", "replace")
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    try:
        parsed = json.loads(text) if text else None
    except json.JSONDecodeError:
        parsed = text
    return r.status, parsed, hdrs


def is_error(c, label, got, status):
    st, body, _ = got
    c.check(st == status and isinstance(body, dict) and isinstance(body.get("error"), str)
            and body["error"], f"{label}: want {status} with an error, got {st} {str(body)[:200]}")


def check_crud(c, s):
    db = s.env["HEARTH_UI_DB"]
    c.check(not os.path.exists(db), "the history database exists before any /ui/api request")
    st, body, h = call(s, "GET", "/ui/api/chats")
    c.check(st == 200 and body == {"chats": [], "next": None}, f"empty list: {st} {body}")
    c.check(h.get("cache-control") == "no-store", f"no Cache-Control: no-store: {h}")
    c.check(os.path.exists(db), "no database after the first request")
    c.check(stat.S_IMODE(os.stat(db).st_mode) == 0o600, "the database is not private (0600)")

    st, chat, _ = call(s, "POST", "/ui/api/chats",
                       {"title": "Trip planning", "model": "qwen3:8b", "system": "be brief",
                        "options": {"temperature": 0.3, "num_ctx": 8192}})
    c.check(st == 201 and chat["title"] == "Trip planning" and chat["options"]["num_ctx"] == 8192
            and chat["current_leaf"] is None and len(chat["id"]) == 36, f"create: {st} {chat}")
    cid = chat["id"]
    st, empty, _ = call(s, "POST", "/ui/api/chats", raw="")
    c.check(st == 201 and empty["title"] == "" and empty["options"] == {}, f"create {{}}: {empty}")

    # A conversation with a regenerated answer and an edited question.
    def post(body):
        return call(s, "POST", f"/ui/api/chats/{cid}/messages", body)
    st, u1, _ = post({"parent_id": None, "role": "user", "content": "Where to go in Lisbon?"})
    c.check(st == 201 and u1["parent_id"] is None and u1["role"] == "user"
            and u1["thinking"] == "" and u1["tool_calls"] is None and u1["extra"] is None,
            f"first message: {st} {u1}")
    st, a1, _ = post({"parent_id": u1["id"], "role": "assistant", "content": "Alfama.",
                      "thinking": "short", "model": "qwen3:8b",
                      "tool_calls": [{"function": {"name": "maps", "arguments": {"q": "x"}}}],
                      "extra": {"citations": ["https://example.org"]}})
    c.check(st == 201 and a1["parent_id"] == u1["id"] and a1["model"] == "qwen3:8b"
            and a1["tool_calls"][0]["function"]["name"] == "maps"
            and a1["extra"]["citations"] == ["https://example.org"], f"answer: {st} {a1}")
    st, a2, _ = post({"parent_id": u1["id"], "role": "assistant", "content": "Belém, for pastéis."})
    c.check(st == 201 and a2["parent_id"] == u1["id"], f"regenerated: {a2}")
    st, u2, _ = post({"role": "user", "content": "And after that?"})  # under the current leaf
    c.check(st == 201 and u2["parent_id"] == a2["id"], f"no parent_id → under the leaf: {u2}")
    st, got, _ = call(s, "GET", f"/ui/api/chats/{cid}")
    c.check(st == 200 and got["chat"]["current_leaf"] == u2["id"]
            and [m["id"] for m in got["messages"]] == [u1["id"], a1["id"], a2["id"], u2["id"]],
            f"get chat: {st} {got}")
    c.check(set(got["messages"][0]) == {"id", "parent_id", "role", "content", "thinking",
                                        "tool_calls", "model", "created_at", "extra"},
            f"message fields: {sorted(got['messages'][0])}")
    c.check(got["chat"]["updated_at"] >= got["chat"]["created_at"], "updated_at before created_at")

    # PATCH: rename, settings, branch.
    st, p, _ = call(s, "PATCH", f"/ui/api/chats/{cid}",
                    {"title": "Lisbon", "current_leaf": a1["id"], "options": {"seed": 7}})
    c.check(st == 200 and p["title"] == "Lisbon" and p["current_leaf"] == a1["id"]
            and p["options"] == {"seed": 7} and p["model"] == "qwen3:8b", f"patch: {st} {p}")

    # The list: newest activity first, search with snippets.
    st, lst, _ = call(s, "GET", "/ui/api/chats")
    c.check(st == 200 and lst["chats"][0]["id"] == cid and len(lst["chats"]) == 2
            and set(lst["chats"][0]) == {"id", "title", "model", "created_at", "updated_at"},
            f"list: {lst}")
    st, found, _ = call(s, "GET", "/ui/api/chats?q=pasteis")
    c.check(st == 200 and [x["id"] for x in found["chats"]] == [cid]
            and "<mark>pastéis</mark>" in found["chats"][0].get("snippet", ""),
            f"search: {st} {found}")
    st, found, _ = call(s, "GET", "/ui/api/chats?q=" + "lisb%C3%B3n")  # accents fold
    c.check(st == 200 and [x["id"] for x in found["chats"]] == [cid], f"title search: {found}")
    for q in ['"', "NEAR(", "AND", "*", "a%22b%22", "%FF%FE", "%00", "col:x", "(((", "%F0%9F%8E%89"]:
        st, r, _ = call(s, "GET", "/ui/api/chats?q=" + q)
        c.check(st == 200 and isinstance(r.get("chats"), list), f"hostile q={q!r}: {st} {r}")

    # Deleting a message takes its subtree; the leaf moves to the parent.
    st, _, _ = call(s, "PATCH", f"/ui/api/chats/{cid}", {"current_leaf": u2["id"]})
    st, body, _ = call(s, "DELETE", f"/ui/api/chats/{cid}/messages/{a2['id']}")
    c.check(st == 204 and body is None, f"delete message: {st} {body}")
    st, got, _ = call(s, "GET", f"/ui/api/chats/{cid}")
    c.check([m["id"] for m in got["messages"]] == [u1["id"], a1["id"]]
            and got["chat"]["current_leaf"] == u1["id"], f"after subtree delete: {got}")
    st, found, _ = call(s, "GET", "/ui/api/chats?q=pasteis")
    c.check(found["chats"] == [], f"deleted text still found: {found}")
    return cid, a1, u1


def check_paging(c, s):
    ids = set()
    for i in range(23):
        st, ch, _ = call(s, "POST", "/ui/api/chats", {"title": f"paging {i}"})
        ids.add(ch["id"])
    st, all_, _ = call(s, "GET", "/ui/api/chats?limit=200")
    total = len(all_["chats"])
    seen, cursor, pages = [], None, 0
    while True:
        path = "/ui/api/chats?limit=4" + (f"&cursor={cursor}" if cursor else "")
        st, page, _ = call(s, "GET", path)
        if st != 200:
            c.check(False, f"page {pages}: {st} {page}")
            break
        seen += [x["id"] for x in page["chats"]]
        pages += 1
        cursor = page["next"]
        if not cursor or pages > 100:
            break
    c.check(len(seen) == total and len(set(seen)) == total and ids <= set(seen),
            f"paging: {len(seen)} rows, {len(set(seen))} distinct, {total} chats")
    st, cap, _ = call(s, "GET", "/ui/api/chats?limit=100000")
    c.check(st == 200 and len(cap["chats"]) == min(total, 200), f"limit capped: {st}")
    for bad in ["limit=0", "limit=-1", "limit=abc", "cursor=%21%21", "cursor=abc",
                "cursor=WyJ1IiwxLDJd"]:
        is_error(c, f"GET /ui/api/chats?{bad}", call(s, "GET", "/ui/api/chats?" + bad), 400)
    st, page, _ = call(s, "GET", "/ui/api/chats?limit=2")
    is_error(c, "list cursor with q", call(s, "GET", f"/ui/api/chats?q=paging&cursor={page['next']}"),
             400)
    # Search pages: every match once.
    seen, cursor = [], None
    for _ in range(50):
        st, page, _ = call(s, "GET", "/ui/api/chats?q=paging&limit=5" +
                           (f"&cursor={cursor}" if cursor else ""))
        seen += [x["id"] for x in page["chats"]]
        cursor = page["next"]
        if not cursor:
            break
    c.check(set(seen) == ids and len(seen) == len(ids), f"search paging: {len(seen)} of {len(ids)}")


def check_errors(c, s, cid, a1):
    unknown = "00000000-0000-4000-8000-000000000000"
    is_error(c, "GET unknown chat", call(s, "GET", f"/ui/api/chats/{unknown}"), 404)
    is_error(c, "PATCH unknown chat", call(s, "PATCH", f"/ui/api/chats/{unknown}", {"title": "x"}),
             404)
    is_error(c, "DELETE unknown chat", call(s, "DELETE", f"/ui/api/chats/{unknown}"), 404)
    is_error(c, "message to unknown chat",
             call(s, "POST", f"/ui/api/chats/{unknown}/messages", {"role": "user"}), 404)
    is_error(c, "DELETE unknown message",
             call(s, "DELETE", f"/ui/api/chats/{cid}/messages/{unknown}"), 404)
    is_error(c, "unknown path", call(s, "GET", "/ui/api/nothing"), 404)
    is_error(c, "trailing slash", call(s, "GET", "/ui/api/chats/"), 404)
    is_error(c, "too deep a path", call(s, "GET", f"/ui/api/chats/{cid}/messages/x/y"), 404)
    for method, path in [("PUT", "/ui/api/chats"), ("DELETE", "/ui/api/chats"),
                         ("POST", f"/ui/api/chats/{cid}"), ("GET", f"/ui/api/chats/{cid}/messages"),
                         ("PATCH", f"/ui/api/chats/{cid}/messages/{a1['id']}"),
                         ("POST", "/ui/api/export"), ("GET", "/ui/api/import")]:
        got = call(s, method, path, raw="{}" if method != "GET" else None)
        is_error(c, f"{method} {path}", got, 405)
        c.check("allow" in got[2], f"{method} {path}: no Allow header")
    # Malformed bodies and wrong types.
    msgs = f"/ui/api/chats/{cid}/messages"
    for path, method in [("/ui/api/chats", "POST"), (f"/ui/api/chats/{cid}", "PATCH"),
                         (msgs, "POST"), ("/ui/api/import", "POST")]:
        is_error(c, f"{method} {path} bad JSON", call(s, method, path, raw="{not json"), 400)
        is_error(c, f"{method} {path} array body", call(s, method, path, raw="[1,2]"), 400)
        is_error(c, f"{method} {path} deep JSON", call(s, method, path, raw="[" * 5000), 400)
    for bad in [{"title": 5}, {"model": ["x"]}, {"system": {}}, {"options": "hot"},
                {"options": [1]}, {"title": "x" * 501}, {"current_leaf": 3},
                {"current_leaf": "not-a-message"}, {"system": "s" * ((1 << 20) + 1)}]:
        is_error(c, f"PATCH {str(bad)[:60]}", call(s, "PATCH", f"/ui/api/chats/{cid}", bad), 400)
    is_error(c, "POST chat title 501", call(s, "POST", "/ui/api/chats", {"title": "é" * 501}), 400)
    st, ok, _ = call(s, "POST", "/ui/api/chats", {"title": "é" * 500})
    c.check(st == 201, f"a 500-character title: {st}")
    call(s, "DELETE", f"/ui/api/chats/{ok['id']}")
    for bad in [{}, {"role": "wizard"}, {"role": 1}, {"role": "user", "content": 5},
                {"role": "user", "tool_calls": {"a": 1}}, {"role": "user", "extra": [1]},
                {"role": "user", "parent_id": 7}, {"role": "user", "parent_id": "nope"},
                {"role": "user", "content": "x" * ((1 << 20) + 1)},
                {"role": "user", "thinking": "x" * ((1 << 20) + 1)}]:
        is_error(c, f"POST message {str(bad)[:60]}", call(s, "POST", msgs, bad), 400)
    # A parent from another chat.
    st, other, _ = call(s, "POST", "/ui/api/chats", {})
    st, om, _ = call(s, "POST", f"/ui/api/chats/{other['id']}/messages", {"role": "user"})
    is_error(c, "parent from another chat",
             call(s, "POST", msgs, {"role": "user", "parent_id": om["id"]}), 400)
    is_error(c, "current_leaf from another chat",
             call(s, "PATCH", f"/ui/api/chats/{cid}", {"current_leaf": om["id"]}), 400)
    is_error(c, "message deleted through another chat",
             call(s, "DELETE", f"/ui/api/chats/{cid}/messages/{om['id']}"), 404)
    is_error(c, "oversize body", call(s, "POST", msgs, raw=" " * (17 << 20)), 413)
    # Deleting a chat takes its messages and search rows.
    st, _, _ = call(s, "POST", f"/ui/api/chats/{other['id']}/messages",
                    {"role": "user", "content": "quokkas everywhere"})
    st, found, _ = call(s, "GET", "/ui/api/chats?q=quokkas")
    c.check(len(found["chats"]) == 1, f"quokka search before delete: {found}")
    st, body, _ = call(s, "DELETE", f"/ui/api/chats/{other['id']}")
    c.check(st == 204, f"delete chat: {st} {body}")
    st, found, _ = call(s, "GET", "/ui/api/chats?q=quokkas")
    c.check(found["chats"] == [], f"deleted chat still found: {found}")
    is_error(c, "message of a deleted chat",
             call(s, "DELETE", f"/ui/api/chats/{other['id']}/messages/{om['id']}"), 404)


def check_export_import(c, s, cid):
    st, doc, h = call(s, "GET", "/ui/api/export")
    c.check(st == 200 and doc["version"] == 1 and isinstance(doc["chats"], list),
            f"export: {st} {str(doc)[:200]}")
    c.check("attachment" in h.get("content-disposition", ""), f"export headers: {h}")
    before = len(doc["chats"])
    mine = [x for x in doc["chats"] if x["id"] == cid][0]
    c.check(len(mine["messages"]) == 2 and mine["messages"][1]["extra"] is not None,
            f"exported chat: {mine}")
    # Into the same server: all ids collide and are replaced.
    st, r, _ = call(s, "POST", "/ui/api/import", doc)
    c.check(st == 200 and r == {"imported": before}, f"import: {st} {r}")
    st, after, _ = call(s, "GET", "/ui/api/export")
    c.check(len(after["chats"]) == 2 * before, f"chats after import: {len(after['chats'])}")
    copies = [x for x in after["chats"] if x["title"] == mine["title"] and x["id"] != cid]
    c.check(len(copies) == 1, f"imported copy of the chat: {len(copies)}")
    if copies:
        cp = copies[0]
        old_ids = {m["id"] for m in mine["messages"]}
        new_ids = [m["id"] for m in cp["messages"]]
        c.check(not old_ids & set(new_ids) and cp["messages"][1]["parent_id"] == new_ids[0]
                and cp["current_leaf"] in new_ids
                and cp["messages"][1]["content"] == mine["messages"][1]["content"]
                and cp["updated_at"] == mine["updated_at"], f"import remapped ids: {cp}")
    # Into a fresh server: the same document back.
    s2 = Server()
    try:
        st, r, _ = call(s2, "POST", "/ui/api/import", doc)
        st, again, _ = call(s2, "GET", "/ui/api/export")
        c.check(st == 200 and again == doc, "export → import → export differs on a fresh server")
    finally:
        s2.stop()
    # All or nothing.
    bad = {"version": 1, "chats": [{"title": "fine"}, {"messages": [{"role": "nope"}]}]}
    is_error(c, "import with a bad message", call(s, "POST", "/ui/api/import", bad), 400)
    for b in [{"chats": []}, {"version": 2, "chats": []}, {"version": 1, "chats": "x"},
              {"version": 1, "chats": [{"messages": [{"id": "a", "parent_id": "b", "role": "user"},
                                                     {"id": "b", "parent_id": "a",
                                                      "role": "user"}]}]}]:
        is_error(c, f"import {str(b)[:60]}", call(s, "POST", "/ui/api/import", b), 400)
    st, final, _ = call(s, "GET", "/ui/api/export")
    c.check(len(final["chats"]) == 2 * before, "a refused import left chats behind")


def check_root_and_unavailable(c, s):
    # GET / for a client that does not ask for HTML: the probe text Ollama clients look for.
    c.check(s.alive(), "GET / no longer answers 'Ollama is running'")
    st, _, body = s.request("GET", "/")
    c.check(st == 200 and body == "Ollama is running", f"GET /: {st} {body!r}")
    # A database path that cannot be opened: /ui/api answers 503, the rest of the server works.
    tmp = tempfile.mkdtemp(prefix="hearth-ui-bad-")
    blocked = os.path.join(tmp, "dir.sqlite")
    os.mkdir(blocked)
    s2 = Server(env={"HEARTH_UI_DB": blocked})
    try:
        st, body, _ = call(s2, "GET", "/ui/api/chats")
        c.check(st == 503 and "dir.sqlite" in body.get("error", ""), f"unopenable db: {st} {body}")
        st, body, _ = call(s2, "GET", "/api/version")
        c.check(st == 200, f"/api/version with a bad history db: {st}")
        c.check(s2.alive(), "GET / with a bad history db")
    finally:
        s2.stop()
        os.rmdir(blocked)
        os.rmdir(tmp)


def main():
    c = Checker("ui_history")
    s = Server()
    try:
        cid, a1, u1 = check_crud(c, s)
        check_paging(c, s)
        check_errors(c, s, cid, a1)
        check_export_import(c, s, cid)
        check_root_and_unavailable(c, s)
        c.check(s.alive(), "the server died")
    finally:
        s.stop()
    c.finish()


if __name__ == "__main__":
    main()
