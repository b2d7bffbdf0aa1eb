"""The example site's second app: a JSON API mounted at /api (see gatehouse.toml)."""
import json
import os


def application(environ, start_response):
    body = json.dumps(
        {
            "api": os.environ.get("API_NAME"),
            "script_name": environ["SCRIPT_NAME"],
            "path_info": environ["PATH_INFO"],
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
