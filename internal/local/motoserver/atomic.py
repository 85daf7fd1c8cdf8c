#!/usr/bin/env python3
"""moto_server whose DynamoDB writes are atomic (motoserver.Start runs it).

moto_server answers requests on several threads, and its DynamoDB backend
reads an item, checks the condition and writes it back without a lock: two
concurrent conditional writes can both pass their condition against the same
old item. DynamoDB itself never does that, so the tests of conditional writes
run moto through this wrapper, which serialises the writes.
"""
import copy
import functools
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_lock = threading.Lock()


def _serialised(method):
    # The handler reads the returned item (UpdateItem's ReturnValues) after
    # the call: a copy taken under the lock, or a concurrent write would show
    # in this one's answer (two UpdateItems answering the same new value).
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with _lock:
            return copy.deepcopy(method(self, *args, **kwargs))

    return locked


for _name in ("put_item", "update_item", "delete_item", "transact_write_items"):
    setattr(DynamoDBBackend, _name, _serialised(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    main()
