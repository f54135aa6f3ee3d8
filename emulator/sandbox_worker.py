"""The process a Lambda function runs in locally: its sandbox (started by emulator/sandbox.py).

Run as ``python -I -S sandbox_worker.py CODE_DIR RUNTIME_DIR HANDLER REQUEST_FD RESPONSE_FD``:
no site-packages, no current directory, nothing from the environment's ``PYTHON*``; the
import path is the function's code folder, then what the Lambda runtime ships, then the
standard library, as ``/var/task`` and ``/var/runtime`` are in Lambda. The handler module is
imported at the first invocation (the cold start) and kept. Each request is one JSON line:
``{"event", "context", "environment", "timeout_seconds"}``; each answer one JSON line,
``{"result": ...}`` or ``{"error": <the Lambda runtime's error envelope>}``. The handler's
own output (logs) goes to this process's stdout and stderr.
"""

import importlib
import json
import os
import sys
import time
import traceback


class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    def __init__(self, fields: dict, deadline: float) -> None:
        self.function_name = fields["function_name"]
        self.function_version = fields["function_version"]
        self.invoked_function_arn = fields["invoked_function_arn"]
        self.memory_limit_in_mb = fields["memory_limit_in_mb"]
        self.aws_request_id = fields["aws_request_id"]
        self.log_group_name = fields["log_group_name"]
        self.log_stream_name = fields["log_stream_name"]
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class ImportModuleError(Exception):
    """The handler module could not be imported (Lambda's Runtime.ImportModuleError)."""


def error_envelope(error: BaseException, request_id: str, error_type: str = "") -> dict:
    """The Lambda Python runtime's payload for an unhandled exception."""
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename != __file__
    ]
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(frames),
    }


def main() -> None:
    code_dir, runtime_dir, handler, request_fd, response_fd = sys.argv[1:6]
    sys.path[:0] = [code_dir, runtime_dir]
    os.chdir(code_dir)
    module_name, _, function_name = handler.rpartition(".")
    base_environment = dict(os.environ)
    function = None
    with os.fdopen(int(request_fd), "rb") as requests, os.fdopen(int(response_fd), "wb") as out:
        for line in requests:
            message = json.loads(line)
            os.environ.clear()
            os.environ.update(base_environment)
            os.environ.update(message["environment"])
            request_id = message["context"]["aws_request_id"]
            deadline = time.monotonic() + message["timeout_seconds"]
            try:
                if function is None:
                    try:
                        function = getattr(importlib.import_module(module_name), function_name)
                    except Exception as error:
                        raise ImportModuleError(
                            f"Unable to import module '{module_name}': {error}"
                        ) from error
                reply = {
                    "result": function(
                        message["event"], LambdaContext(message["context"], deadline)
                    )
                }
            except Exception as error:
                kind = "Runtime.ImportModuleError" if function is None else ""
                reply = {"error": error_envelope(error, request_id, kind)}
            try:
                answer = json.dumps(reply)
            except (TypeError, ValueError) as error:
                answer = json.dumps(
                    {"error": error_envelope(error, request_id, "Runtime.MarshalError")}
                )
            sys.stdout.flush()
            sys.stderr.flush()
            out.write(answer.encode("utf-8") + b"\n")
            out.flush()


if __name__ == "__main__":
    main()
