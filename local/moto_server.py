"""moto's server (as `moto_server` starts it), made as strict as AWS where we can make it so.

1. Requests are handled one at a time. moto's backends are not thread-safe: under the stock
   threaded server, two concurrent conditional writes can both pass their condition (seen here:
   two concurrent UpdateItem claims of one job both succeeding). In DynamoDB every conditional
   write is atomic, and Deferred's idempotency rests on that. Connections are still accepted on
   threads; only the handling is one at a time.

2. Every DynamoDB request moto accepts is also sent to a strict DynamoDB (`--dynalite CLI`):
   dynalite, which its authors test against live DynamoDB, runs as a child process and receives
   the same request stream, so its tables mirror moto's. moto accepts requests that DynamoDB
   rejects (unused or missing expression names and values, reserved words, more than 25 batch
   items, items over 400 KB, short table names). When dynalite rejects a request as invalid, the
   client gets dynalite's ValidationException, with the request in the message; when the two
   disagree on the outcome of a valid request, that is logged. dynalite has no transactions: each
   action of a TransactWriteItems is checked as its single-item request with a condition that
   cannot hold (validated, nothing written), then mirrored when moto applied it. Either is
   recorded in the
   `--violations` file, which `scripts/moto.sh run` turns into a failed run (after a rejection
   moto's state is ahead of dynalite's, but the run has failed by then).

3. IAM is enforced (`--enforce-iam`): every request must be signed by a known access key whose
   policies allow the action on the resource. The access key `test` (secret `test`) is an
   administrator, for provisioning and test set-up; the local system creates one user per
   function from template.yaml's policies, and runs each function's code with that user's keys.
   moto checks resources only for S3 and SQS by itself; here DynamoDB (table ARNs) and SNS (topic
   ARNs) are checked too, so a policy scoped to the wrong table fails locally as in AWS. As in
   AWS, a PublishBatch needs sns:Publish and each action of a DynamoDB transaction its own
   single-item permission.

4. SQS message move tasks (StartMessageMoveTask, ListMessageMoveTasks), which moto 5.2.5 lacks
   and the DLQ redrive (`deferred-ops redrive`) uses, are added to moto's SQS responses (so IAM
   checks them as any SQS action, on the source queue): see `add_message_move_tasks`. And
   GetShardIterator for a shard the stream does not have answers ResourceNotFoundException, as in
   AWS (a shard past the stream's 24 hours is gone), where moto fails an assertion (HTTP 500).

Usage: python local/moto_server.py [-H HOST] [-p PORT] [--dynalite CLI] [--violations FILE]
                                   [--enforce-iam]
"""

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from moto import settings
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

ACCOUNT = "123456789012"
ADMIN_KEY = "test"
DYNAMODB_TARGET = "DynamoDB_20120810."
# Tables of tests that check this emulator's strictness itself: rejections are answered as for any
# table, but not recorded as violations.
EXPECTED_REJECTIONS = "expect-rejection-"
# dynalite's answers that mean "AWS would reject this request, whatever the table holds".
INVALID_REQUEST = ("ValidationException", "SerializationException")


def log(message):
    print(f"[moto_server] {message}", file=sys.stderr, flush=True)


class Violations:
    """Requests where moto was kinder than a strict DynamoDB, appended as JSON lines."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def record(self, kind, operation, request, detail):
        entry = {"kind": kind, "operation": operation, "detail": detail, "request": request}
        log(f"{kind}: {operation}: {detail}\n    request: {request}")
        if f'"{EXPECTED_REJECTIONS}' in request:
            return
        if self.path:
            with self.lock, open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")


class Dynalite:
    """A dynalite child process on a free loopback port."""

    def __init__(self, cli):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        args = [
            "node", cli, "--host", "127.0.0.1", "--port", str(self.port),
            # Tables are ACTIVE at once, as moto's are.
            "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0",
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"dynalite exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("dynalite did not listen within 15 s")

    def call(self, target, headers, body):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/", data=body, method="POST",
            headers={
                "X-Amz-Target": target,
                "Content-Type": headers.get("CONTENT_TYPE") or "application/x-amz-json-1.0",
                "Authorization": headers.get("HTTP_AUTHORIZATION", ""),
                "X-Amz-Date": headers.get("HTTP_X_AMZ_DATE", ""),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def error_type(body):
    try:
        return json.loads(body).get("__type", "").rsplit("#", 1)[-1]
    except (ValueError, AttributeError):
        return ""


def error_message(body):
    try:
        parsed = json.loads(body)
        return parsed.get("message") or parsed.get("Message") or ""
    except (ValueError, AttributeError):
        return body.decode("utf-8", "replace")[:500]


def shorten(body, limit=2000):
    text = body.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} bytes)"


class Emulator:
    """moto's WSGI app, one request at a time, with DynamoDB requests checked by dynalite."""

    def __init__(self, app, dynalite, violations):
        self.app = app
        self.dynalite = dynalite
        self.violations = violations
        self.lock = threading.Lock()
        self.unchecked = set()
        self.key_schemas = {}

    def __call__(self, environ, start_response):
        with self.lock:
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            if not target.startswith(DYNAMODB_TARGET):
                answer = self.moto(environ)
                if answer.status == 403:
                    log(f"denied: {environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}: {shorten(answer.body, 600)}")
                return answer.send(start_response)
            request = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(request)
            operation = target[len(DYNAMODB_TARGET):]
            answer = self.moto(environ)
            status, body = answer.status, answer.body
            if status == 403:
                # Not authorized: neither store sees the request.
                return access_denied(body).send(start_response)
            if self.dynalite is None:
                return answer.send(start_response)
            if operation == "TransactWriteItems":
                # dynalite has no transactions: each action is checked on its own.
                problem = self.check_transaction(environ, request, status < 400)
                if problem is not None:
                    self.violations.record("rejected", operation, shorten(request), problem)
                    if status < 400:
                        return rejected("ValidationException", operation, problem, request).send(start_response)
                return answer.send(start_response)
            # moto has applied the request; dynalite applies it too (so its tables keep
            # mirroring moto's) and says whether DynamoDB would have accepted it.
            strict_status, strict_body = self.dynalite.call(target, environ, request)
            kind = error_type(strict_body) if strict_status >= 400 else ""
            if kind == "UnknownOperationException":
                if operation not in self.unchecked:
                    self.unchecked.add(operation)
                    log(f"dynalite does not implement {operation}; moto alone serves it")
            elif kind in INVALID_REQUEST:
                message = error_message(strict_body)
                self.violations.record("rejected", operation, shorten(request), message)
                if status < 400:
                    return rejected(kind, operation, message, request).send(start_response)
            elif (status < 400) != (strict_status < 400):
                self.violations.record(
                    "diverged", operation, shorten(request),
                    f"moto answered {status} {error_type(body)}, "
                    f"dynalite answered {strict_status} {kind}: {error_message(strict_body)}",
                )
            return answer.send(start_response)

    def check_transaction(self, environ, request, applied):
        """What DynamoDB would reject in a TransactWriteItems, or None. Each action is sent to
        dynalite as its single-item request with a condition that cannot hold: dynalite validates
        the request (expressions, names and values, reserved words, item size) and then fails
        the condition, so nothing changes. When moto applied the transaction, the actions are then
        applied to dynalite one by one, so that its tables keep mirroring moto's."""
        try:
            items = json.loads(request).get("TransactItems") or []
        except ValueError:
            return None  # moto has answered a malformed body already
        if not 1 <= len(items) <= 100:
            return f"TransactItems must have 1 to 100 members, not {len(items)}"
        seen = set()
        single = []
        for item in items:
            (kind, body), = item.items()
            key = body.get("Key") or self.key_of(environ, body.get("TableName"), body.get("Item") or {})
            identity = (body.get("TableName"), json.dumps(key, sort_keys=True))
            if identity in seen:
                return "Transaction request cannot include multiple operations on one item"
            seen.add(identity)
            operation = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                         "ConditionCheck": "DeleteItem"}.get(kind)
            if operation is None:
                return f"unknown transaction action {kind}"
            single.append((kind, operation, body))
        for kind, operation, body in single:
            probe = dict(body)
            names = dict(probe.get("ExpressionAttributeNames") or {})
            names["#deferred_probe"] = "deferred_probe"
            probe["ExpressionAttributeNames"] = names
            impossible = "attribute_exists(#deferred_probe) AND attribute_not_exists(#deferred_probe)"
            condition = probe.get("ConditionExpression")
            probe["ConditionExpression"] = f"({condition}) AND {impossible}" if condition else impossible
            probe.pop("ReturnValuesOnConditionCheckFailure", None)
            status, answer = self.dynalite.call(
                DYNAMODB_TARGET + operation, environ, json.dumps(probe).encode())
            if error_type(answer) in INVALID_REQUEST:
                return f"{kind}: {error_message(answer)}"
        if applied:
            for kind, operation, body in single:
                if kind == "ConditionCheck":
                    continue
                body = dict(body)
                body.pop("ReturnValuesOnConditionCheckFailure", None)
                status, answer = self.dynalite.call(
                    DYNAMODB_TARGET + operation, environ, json.dumps(body).encode())
                if status >= 400:
                    log(f"mirroring a transaction's {kind} on dynalite failed: {error_message(answer)}")
        return None

    def key_of(self, environ, table, item):
        """The key attributes of `item` under `table`'s key schema (asked of dynalite once)."""
        if table not in self.key_schemas:
            status, answer = self.dynalite.call(
                DYNAMODB_TARGET + "DescribeTable", environ,
                json.dumps({"TableName": table}).encode())
            schema = json.loads(answer).get("Table", {}).get("KeySchema", []) if status < 400 else []
            self.key_schemas[table] = [k["AttributeName"] for k in schema]
        return {name: item.get(name) for name in self.key_schemas[table]}

    def moto(self, environ):
        """Runs moto's app to the end of its body, without answering yet."""
        seen = {}

        def capture(status, headers, exc_info=None):
            seen["status"], seen["headers"] = status, headers
            return lambda _data: None

        chunks = self.app(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return Answer(seen.get("status", "500 Internal Server Error"), seen.get("headers", []), body)


class Answer:
    """A response held back until the emulator decides to send it (headers as moto made them:
    a HEAD response's Content-Length is the object's size, not the empty body's)."""

    def __init__(self, status_line, headers, body):
        self.status_line, self.headers, self.body = status_line, headers, body
        self.status = int(status_line.split(" ", 1)[0])

    def send(self, start_response):
        start_response(self.status_line, self.headers)
        return [self.body]


def json_error(kind, message):
    body = json.dumps({"__type": f"com.amazon.coral.service#{kind}", "message": message}).encode()
    return Answer("400 Bad Request", [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("Content-Length", str(len(body))),
    ], body)


def access_denied(xml_body):
    """DynamoDB speaks JSON: moto's XML AccessDenied becomes DynamoDB's AccessDeniedException."""
    text = xml_body.decode("utf-8", "replace")
    start, end = text.find("<Message>"), text.find("</Message>")
    message = text[start + len("<Message>"):end] if 0 <= start < end else text
    kind = "AccessDeniedException" if "AccessDenied" in text else "UnrecognizedClientException"
    return json_error(kind, message)


def rejected(kind, operation, message, request):
    return json_error(kind, (
        f"{message} [strict DynamoDB (dynalite) rejected this {operation}, which moto accepted "
        f"and DynamoDB rejects; request: {shorten(request)}]"
    ))


def enforce_iam():
    """Turns on moto's IAM checks, with `test`/`test` as an administrator's access key, and
    resource ARNs for DynamoDB and SNS requests (moto passes `*` for them by itself)."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.iam.access_control import IAMRequestBase
    from moto.iam.models import iam_backends
    from moto.sns.responses import SNSResponse

    # moto recomputes SigV4 signatures from the form body as it re-encodes it, and disagrees with
    # the AWS SDK on some characters (SNS PublishBatch with JSON messages answered
    # SignatureDoesNotMatch). The access key still decides who is calling and which policies
    # apply; an unknown key is still refused.
    IAMRequestBase.check_signature = lambda self: None

    # Batch operations that IAM authorises as their single-message action: AWS has no
    # sns:PublishBatch action (a PublishBatch needs sns:Publish); moto asks for one. A DynamoDB
    # transaction is authorised action by action (a Put needs dynamodb:PutItem on its table).
    authorized_as = {"sns:PublishBatch": "sns:Publish"}
    per_item = threading.local()
    original_init = IAMRequestBase.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        action = getattr(per_item, "action", None) or self._action
        self._action = authorized_as.get(action, action)

    IAMRequestBase.__init__ = init

    transaction_actions = {
        "Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem",
        "Delete": "dynamodb:DeleteItem", "ConditionCheck": "dynamodb:ConditionCheckItem",
        "Get": "dynamodb:GetItem",
    }
    original_authorize = DynamoHandler._authenticate_and_authorize_normal_action

    def authorize(self, resource="*"):
        if self._get_action() not in ("TransactWriteItems", "TransactGetItems"):
            return original_authorize(self, resource)
        for item in (getattr(self, "params", None) or {}).get("TransactItems") or []:
            for kind, body in item.items():
                per_item.action = transaction_actions.get(kind, f"dynamodb:{kind}")
                try:
                    original_authorize(
                        self,
                        f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{body.get('TableName')}",
                    )
                finally:
                    per_item.action = None

    DynamoHandler._authenticate_and_authorize_normal_action = authorize

    iam = iam_backends[ACCOUNT]["aws"]
    iam.create_user("us-east-1", "emulator-admin")
    iam.put_user_policy("emulator-admin", "admin", json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }))
    key = iam.create_access_key("emulator-admin")
    del iam.access_keys[key.physical_resource_id]
    key.access_key_id = ADMIN_KEY
    key.secret_access_key = ADMIN_KEY
    iam.access_keys[key.physical_resource_id] = key

    def table_arn(handler):
        params = getattr(handler, "params", None) or {}
        tables = [params["TableName"]] if "TableName" in params else list(params.get("RequestItems") or {})
        if len(tables) != 1:
            return "*"
        return f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/{tables[0]}"

    def topic_arn(handler):
        return handler._get_param("TopicArn") or handler._get_param("TargetArn") or "*"

    DynamoHandler._determine_resource = table_arn
    SNSResponse._determine_resource = topic_arn
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0


def add_message_move_tasks():
    """SQS message move tasks, as AWS documents them, on moto's queues. Differences from AWS: a
    task moves every visible message at once when it starts (AWS moves them in the background, at
    up to MaxNumberOfMessagesPerSecond), so it is COMPLETED when StartMessageMoveTask returns; and
    without a DestinationArn the messages go to the one queue whose redrive policy names the DLQ
    (AWS returns each message to the queue it came from; moto does not record that, so a DLQ of
    several queues needs a DestinationArn). CancelMessageMoveTask is not added: no task is ever
    RUNNING to cancel."""
    import uuid

    from moto.core.responses import ActionResult
    from moto.sqs.exceptions import InvalidParameterValue, SQSException
    from moto.sqs.responses import SQSResponse

    tasks = {}  # source queue ARN -> its tasks, oldest first

    def queue_by_arn(backend, arn):
        for queue in backend.queues.values():
            if queue.queue_arn == arn:
                return queue
        raise SQSException("ResourceNotFoundException", f"The resource that you specified for the SourceArn or DestinationArn parameter does not exist: {arn}")

    def start_message_move_task(self):
        source_arn = self._get_param("SourceArn")
        destination_arn = self._get_param("DestinationArn")
        rate = self._get_param("MaxNumberOfMessagesPerSecond")
        backend = self.sqs_backend
        source = queue_by_arn(backend, source_arn)
        feeding = backend.list_dead_letter_source_queues(source.name)
        if not feeding:
            raise InvalidParameterValue("Source queue must be configured as a Dead Letter Queue.")
        if destination_arn:
            destination = queue_by_arn(backend, destination_arn)
        elif len(feeding) == 1:
            destination = feeding[0]
        else:
            raise InvalidParameterValue(
                "the emulator does not record which queue a message came from: "
                "give a DestinationArn for a dead-letter queue of several queues")
        moving = list(source.messages)
        for message in moving:
            backend.send_message(
                destination.name, message.body,
                message_attributes=message.message_attributes or None, delay_seconds=0)
        with source._messages_lock:
            source._messages = [m for m in source._messages if m not in moving]
        task = {
            "TaskHandle": str(uuid.uuid4()),
            "Status": "COMPLETED",
            "SourceArn": source_arn,
            "ApproximateNumberOfMessagesMoved": len(moving),
            "ApproximateNumberOfMessagesToMove": len(moving),
            "StartedTimestamp": int(time.time() * 1000),
        }
        if destination_arn:
            task["DestinationArn"] = destination_arn
        if rate is not None:
            task["MaxNumberOfMessagesPerSecond"] = int(rate)
        tasks.setdefault(source_arn, []).append(task)
        log(f"message move task: {len(moving)} message(s) from {source.name} to {destination.name}")
        return ActionResult({"TaskHandle": task["TaskHandle"]})

    def list_message_move_tasks(self):
        source_arn = self._get_param("SourceArn")
        queue_by_arn(self.sqs_backend, source_arn)
        limit = int(self._get_param("MaxResults") or 1)
        if not 1 <= limit <= 10:
            raise InvalidParameterValue("MaxResults must be between 1 and 10")
        newest = list(reversed(tasks.get(source_arn, [])))[:limit]
        # As in AWS, the handle is listed only while a task is RUNNING (here: never).
        results = [{k: v for k, v in t.items() if k != "TaskHandle"} for t in newest]
        return ActionResult({"Results": results})

    original_resource = SQSResponse._determine_resource

    def determine_resource(self):
        if self._get_action() in ("StartMessageMoveTask", "ListMessageMoveTasks"):
            return self._get_param("SourceArn") or "*"
        return original_resource(self)

    SQSResponse.start_message_move_task = start_message_move_task
    SQSResponse.list_message_move_tasks = list_message_move_tasks
    SQSResponse._determine_resource = determine_resource


def answer_unknown_shards():
    """GetShardIterator of a shard the stream does not have: ResourceNotFoundException, as AWS
    answers for a shard trimmed after 24 hours (moto fails an assertion: HTTP 500)."""
    from moto.dynamodb.exceptions import ResourceNotFoundException
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    original = DynamoDBStreamsBackend.get_shard_iterator

    def get_shard_iterator(self, arn, shard_id, shard_iterator_type, sequence_number=None):
        table = self._get_table_from_arn(arn)
        if table.stream_shard is None or table.stream_shard.id != shard_id:
            raise ResourceNotFoundException(
                f"Requested resource not found: Shard: {shard_id} in Stream: {arn} not found")
        return original(self, arn, shard_id, shard_iterator_type, sequence_number)

    DynamoDBStreamsBackend.get_shard_iterator = get_shard_iterator


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--dynalite", help="path of dynalite's cli.js: check DynamoDB requests")
    parser.add_argument("--violations", help="file that collects requests moto was kinder to")
    parser.add_argument("--enforce-iam", action="store_true")
    args = parser.parse_args()

    dynalite = Dynalite(args.dynalite) if args.dynalite else None
    if dynalite is None:
        log("no --dynalite: DynamoDB requests are not checked against a strict DynamoDB")
    add_message_move_tasks()
    answer_unknown_shards()
    if args.enforce_iam:
        enforce_iam()

    def stop(*_):
        if dynalite is not None:
            dynalite.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    app = DomainDispatcherApplication(create_backend_app)
    try:
        run_simple(
            args.host,
            args.port,
            Emulator(app, dynalite, Violations(args.violations)),
            threaded=True,
            request_handler=MotoRequestHandler,
        )
    finally:
        if dynalite is not None:
            dynalite.stop()


if __name__ == "__main__":
    main()
