"""A small Flask application for test/frameworks.test.ts (served as flask_demo:app or flask_demo:create_app())."""
from flask import Flask, abort, jsonify, request


def create_app():
    app = Flask(__name__)

    ITEMS = {1: {"id": 1, "name": "teapot", "tags": ["kitchen", "418"]}, 2: {"id": 2, "name": "caf\u00e9", "tags": []}}

    @app.get("/api/items/<int:item_id>")
    def item(item_id):
        if item_id not in ITEMS:
            abort(404)
        return jsonify(ITEMS[item_id])

    @app.get("/api/search")
    def search():
        q = request.args.get("q", "")
        return jsonify({"q": q, "hits": [i for i in ITEMS.values() if q and q in i["name"]]})

    @app.post("/form")
    def form():
        return jsonify(
            {
                "name": request.form.get("name"),
                "colours": request.form.getlist("colour"),
                "content_type": request.content_type,
            }
        )

    @app.errorhandler(404)
    def not_found(error):
        return jsonify({"error": "not found", "path": request.path}), 404

    return app


app = create_app()
