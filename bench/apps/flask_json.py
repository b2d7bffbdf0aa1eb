"""Benchmark app: one Flask route returning a small JSON document."""
from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def index():
    return jsonify({"message": "Hello, World!", "items": [1, 2, 3]})


application = app
