# -*- coding: utf-8 -*-
# Copyright (c) qubinode.airflow contributors
# Apache License 2.0 (see LICENSES/Apache-2.0.txt or https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE: this module is internal to the qubinode.airflow collection. Its API may change
# without notice; do not import it from other collections.
"""Declared-state engine shared by airflow_connection, airflow_variable and airflow_pool.

Each module declares one object or a list; this engine reads what Airflow holds, compares,
and turns every difference into ONE bulk PATCH (create / update / delete actions), then reads
Airflow's per-item errors. Values Airflow never shows back (passwords, sensitive extras and
variables, all answered as "***") are "unknown": `update_secrets` decides whether unknown counts
as changed (always) or not (on_create).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import fnmatch
import json
import re

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.qubinode.airflow.plugins.module_utils._api import (
    MASK,
    AirflowAPI,
    AirflowAPIError,
    airflow_api_argument_spec,
    quote_id,
)

DIFF_MASK = "********"
# Airflow hides a value when its key contains one of these words (its secrets masker's defaults).
SENSITIVE_WORDS = (
    "access_key", "access_token", "api_key", "apikey", "auth_header", "authorization", "bearer",
    "connection_string", "dsn", "passphrase", "passwd", "password", "private_key", "proxy",
    "proxies", "secret", "service_account", "service_key", "token", "keyfile_dict", "webhook_url",
)
EQUAL, UNKNOWN, DIFFER = 0, 1, 2
ID_PATTERN = re.compile(r"^[\w.-]+$")


class DeclarationError(Exception):
    """Bad input, found before any call changes anything."""


def sensitive(name):
    name = (name or "").lower()
    return any(word in name for word in SENSITIVE_WORDS)


def compare(want, have):
    """EQUAL, DIFFER, or UNKNOWN when the only possible differences hide behind Airflow's mask."""
    if isinstance(have, str) and have == MASK and want is not None and want != "":
        return UNKNOWN
    if isinstance(want, dict) and isinstance(have, dict):
        if set(want) != set(have):
            return DIFFER
        return max([compare(want[k], have[k]) for k in want] or [EQUAL])
    if isinstance(want, list) and isinstance(have, list):
        if len(want) != len(have):
            return DIFFER
        return max([compare(w, h) for w, h in zip(want, have)] or [EQUAL])
    return EQUAL if want == have else DIFFER


def keep_hidden(want, have):
    """`want` with every position Airflow hides in `have` set back to the mask, so that an update
    leaves those stored secrets as they are (Airflow merges "***" with the stored value)."""
    if isinstance(have, str) and have == MASK and want not in (None, ""):
        return MASK
    if isinstance(want, dict) and isinstance(have, dict):
        return dict((k, keep_hidden(v, have.get(k))) for k, v in want.items())
    return want


def mask_secrets(value, key=None):
    """A copy safe to show in a diff: values under sensitive keys replaced."""
    if key is not None and sensitive(key) and value not in (None, "", {}, []):
        return DIFF_MASK
    if isinstance(value, dict):
        return dict((k, mask_secrets(v, k)) for k, v in value.items())
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


def _json_object(value, where):
    """extra / JSON values arrive as dicts or JSON text; Airflow stores text."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        raise DeclarationError("%s is not valid JSON: give a mapping (YAML dict) or a JSON object string" % where)
    if not isinstance(parsed, dict):
        raise DeclarationError("%s must be a JSON object (a mapping), not %s" % (where, type(parsed).__name__))
    return parsed


class Kind:
    """What differs between connections, variables and pools."""

    label = path = items_key = key = None
    fields = ()
    secret_fields = ()
    protected = ()
    # Objects that airflow_dag_repo owns (its registry variable, its git connections): exclusive mode
    # of the generic modules never removes them, or a declared set of variables would unregister
    # every DAG repository.
    owned_elsewhere = ()

    def validate(self, item, where):
        ident = item.get(self.key)
        if not ident or not isinstance(ident, str):
            raise DeclarationError("%s: %s is required" % (where, self.key))
        return item

    def desired(self, item):
        raise NotImplementedError

    def current(self, obj):
        raise NotImplementedError

    def field_state(self, field, want, have):
        return compare(want.get(field), have.get(field))

    def entity(self, want):
        """The request body of a create."""
        return dict((k, v) for k, v in want.items() if not k.startswith("_"))

    def update_entity(self, want, have, update_secrets):
        """The body of an update and its update_mask (None: every field sent)."""
        return self.entity(want), None

    def for_diff(self, obj, declared=None):
        """`declared` (the desired object) names further values to mask (secret_extra keys)."""
        if obj is None:
            return None
        out = mask_secrets(dict((k, v) for k, v in obj.items() if not k.startswith("_")))
        for field in self.secret_fields:
            if out.get(field) not in (None, ""):
                out[field] = DIFF_MASK
        for key in (declared or obj).get("_secret_keys", ()):
            if isinstance(out.get("extra"), dict) and key in out["extra"]:
                out["extra"][key] = DIFF_MASK
        return out


class ConnectionKind(Kind):
    label, path, items_key, key = "connection", "connections", "connections", "connection_id"
    fields = ("conn_type", "description", "host", "login", "schema", "port", "password", "extra")
    secret_fields = ("password",)
    owned_elsewhere = ("qubinode_git_*",)

    def validate(self, item, where):
        Kind.validate(self, item, where)
        cid = item["connection_id"]
        if len(cid) > 200 or not ID_PATTERN.match(cid):
            raise DeclarationError("%s: connection_id %r may hold only letters, digits, '_', '.', '-' (at most 200)"
                                   % (where, cid))
        if item.get("state", "present") == "present" and not item.get("conn_type"):
            raise DeclarationError("%s (%s): conn_type is required, for example conn_type: postgres" % (where, cid))
        extra = dict(_json_object(item.get("extra"), "%s (%s): extra" % (where, cid)))
        secret_extra = item.get("secret_extra") or {}
        extra.update(secret_extra)
        item["extra"] = extra
        item["_secret_keys"] = sorted(secret_extra)
        return item

    def desired(self, item):
        return dict(
            connection_id=item["connection_id"], conn_type=item.get("conn_type"),
            description=item.get("description"), host=item.get("host"), login=item.get("login"),
            schema=item.get("schema"), port=item.get("port"), password=item.get("password"),
            extra=item.get("extra") or {}, _secret_keys=item.get("_secret_keys") or [],
        )

    def current(self, obj):
        out = dict((f, obj.get(f)) for f in self.fields if f != "extra")
        out["connection_id"] = obj["connection_id"]
        try:
            out["extra"] = _json_object(obj.get("extra"), "extra")
        except DeclarationError:
            out["extra"] = {"__unparsed__": obj.get("extra")}
        return out

    def field_state(self, field, want, have):
        if field == "password" and want.get("password") is None:
            return EQUAL  # not declared: left as it is (Airflow never shows it)
        return Kind.field_state(self, field, want, have)

    def entity(self, want):
        body = Kind.entity(self, want)
        if body.get("password") is None:
            body.pop("password", None)
        body["extra"] = json.dumps(want["extra"], sort_keys=True) if want["extra"] else None
        return body

    def update_entity(self, want, have, update_secrets):
        if update_secrets == "on_create":
            want = dict(want, extra=keep_hidden(want["extra"], have["extra"]),
                        password=keep_hidden(want["password"], have["password"]))
        return self.entity(want), None


class VariableKind(Kind):
    label, path, items_key, key = "variable", "variables", "variables", "key"
    fields = ("value", "description")
    owned_elsewhere = ("qubinode_dag_repos",)

    def validate(self, item, where):
        Kind.validate(self, item, where)
        if item.get("state", "present") == "present" and item.get("value") is None and item.get("secret_value") is None:
            raise DeclarationError("%s (%s): give value (or secret_value for a secret)" % (where, item["key"]))
        return item

    def desired(self, item):
        secret = item.get("secret_value") is not None
        return dict(key=item["key"], value=item["secret_value"] if secret else item.get("value"),
                    description=item.get("description"), _secret=secret)

    def current(self, obj):
        return dict(key=obj["key"], value=obj.get("value"), description=obj.get("description"))

    def field_state(self, field, want, have):
        if field != "value":
            return Kind.field_state(self, field, want, have)
        w, h = want.get("value"), have.get("value")
        if isinstance(w, str) or h is None:
            return compare(w, h)
        try:
            return compare(w, json.loads(h))  # a structured value is stored as JSON text
        except ValueError:
            return UNKNOWN if h == MASK else DIFFER

    def update_entity(self, want, have, update_secrets):
        # Airflow stores a variable's "***" literally: leave a hidden value out with update_mask.
        if update_secrets == "on_create" and self.field_state("value", want, have) == UNKNOWN:
            return self.entity(dict(want, value=MASK)), ["description"]
        return self.entity(want), None

    def for_diff(self, obj, declared=None):
        if obj is None:
            return None
        out = dict((k, v) for k, v in obj.items() if not k.startswith("_"))
        declared = declared or obj
        if declared.get("_secret") or sensitive(obj.get("key")):
            out["value"] = DIFF_MASK
        else:
            out["value"] = mask_secrets(out.get("value"))
        return out


class PoolKind(Kind):
    label, path, items_key, key = "pool", "pools", "pools", "name"
    fields = ("slots", "description", "include_deferred")
    protected = ("default_pool",)

    def validate(self, item, where):
        Kind.validate(self, item, where)
        if item.get("state", "present") == "present":
            slots = item.get("slots")
            if slots is None or slots < -1:
                raise DeclarationError("%s (%s): slots must be a number of slots, or -1 for unlimited"
                                       % (where, item["name"]))
        if item["name"] in self.protected and item.get("description") is not None:
            raise DeclarationError("%s (%s): Airflow lets only slots and include_deferred of this pool change; "
                                   "leave description out" % (where, item["name"]))
        return item

    def field_state(self, field, want, have):
        if field == "description" and want["name"] in self.protected:
            return EQUAL
        return Kind.field_state(self, field, want, have)

    def update_entity(self, want, have, update_secrets):
        if want["name"] in self.protected:
            return self.entity(dict(want, description=have.get("description"))), ["include_deferred", "slots"]
        return self.entity(want), None

    def desired(self, item):
        return dict(name=item["name"], slots=item.get("slots"), description=item.get("description"),
                    include_deferred=bool(item.get("include_deferred")))

    def current(self, obj):
        return dict(name=obj["name"], slots=obj.get("slots"), description=obj.get("description"),
                    include_deferred=bool(obj.get("include_deferred")))


def item_argument_spec(kind_options, key):
    """Options of one element of the list form: the single-object options, key required."""
    spec = copy.deepcopy(kind_options)
    spec[key]["required"] = True
    spec["state"] = dict(type="str", choices=["present", "absent"])
    return spec


def module_argument_spec(kind_options, list_name, key):
    spec = airflow_api_argument_spec()
    spec.update(copy.deepcopy(kind_options))
    spec[list_name] = dict(type="list", elements="dict", options=item_argument_spec(kind_options, key))
    spec.update(
        state=dict(type="str", default="present", choices=["present", "absent"]),
        exclusive=dict(type="bool", default=False),
        exclusive_keep=dict(type="list", elements="str", default=[]),
        update_secrets=dict(type="str", default="on_create", choices=["always", "on_create"]),
    )
    return spec


class Reconciler:
    """Read, compare, act once (one bulk PATCH), report."""

    def __init__(self, kind, api, check_mode=False):
        self.kind = kind
        self.api = api
        self.check_mode = check_mode

    def declared(self, params, list_name, single_fields):
        """The declared items with their state, validated before anything is called."""
        kind = self.kind
        items = []
        if params.get(list_name) is not None:
            for index, raw in enumerate(params[list_name]):
                item = dict((k, v) for k, v in raw.items())
                item["state"] = item.get("state") or params["state"]
                items.append(kind.validate(item, "%s[%d]" % (list_name, index)))
        elif params.get(kind.key) is not None:
            item = dict((f, params.get(f)) for f in single_fields)
            item["state"] = params["state"]
            items.append(kind.validate(item, kind.label))
        seen = set()
        for index, item in enumerate(items):
            if item[kind.key] in seen:
                raise DeclarationError("%s[%d]: %s %r is declared twice" % (list_name, index, kind.key, item[kind.key]))
            seen.add(item[kind.key])
        if params.get("exclusive") and params["state"] != "present":
            raise DeclarationError("exclusive: true needs state: present (it removes what is not declared)")
        return items

    def read(self, ids, everything):
        """Current objects by id: the whole collection for lists and exclusive mode, else one GET."""
        kind = self.kind
        if everything:
            return dict((o[kind.key], kind.current(o))
                        for o in self.api.list_all(kind.path, kind.items_key))
        out = {}
        for ident in ids:
            obj = self.api.get_or_none("%s/%s" % (kind.path, quote_id(ident)))
            if obj is not None:
                out[ident] = kind.current(obj)
        return out

    def plan(self, items, existing, update_secrets, exclusive=False, keep=()):
        kind = self.kind
        create, update, delete, unknown = [], [], [], []
        for item in items:
            ident = item[kind.key]
            have = existing.get(ident)
            if item["state"] == "absent":
                if have is not None:
                    if ident in kind.protected:
                        raise DeclarationError("%s %r is built into Airflow and cannot be removed" % (kind.label, ident))
                    delete.append(ident)
                continue
            want = kind.desired(item)
            if have is None:
                create.append(want)
                continue
            states = [kind.field_state(f, want, have) for f in kind.fields]
            worst = max(states or [EQUAL])
            if worst == DIFFER or (worst == UNKNOWN and update_secrets == "always"):
                update.append((want, have))
            elif worst == UNKNOWN:
                unknown.append(ident)
        if exclusive:
            declared = set(i[kind.key] for i in items)
            for ident in sorted(existing):
                if ident in declared or ident in kind.protected:
                    continue
                if any(fnmatch.fnmatchcase(ident, pat) for pat in tuple(keep) + kind.owned_elsewhere):
                    continue
                delete.append(ident)
        return create, update, delete, unknown

    def apply(self, create, update, delete, update_secrets):
        kind = self.kind
        actions = []
        if create:
            actions.append(dict(action="create", action_on_existence="fail",
                                entities=[kind.entity(w) for w in create]))
        by_mask = {}
        for want, have in update:
            body, mask = kind.update_entity(want, have, update_secrets)
            by_mask.setdefault(tuple(mask or ()), []).append(body)
        for mask, bodies in sorted(by_mask.items()):
            action = dict(action="update", action_on_non_existence="fail", entities=bodies)
            if mask:
                action["update_mask"] = list(mask)
            actions.append(action)
        if delete:
            actions.append(dict(action="delete", action_on_non_existence="skip", entities=list(delete)))
        return self.api.bulk(kind.path, actions)

    def run(self, params, list_name, single_fields, want_diff):
        kind = self.kind
        items = self.declared(params, list_name, single_fields)
        everything = params.get(list_name) is not None or params.get("exclusive")
        existing = self.read([i[kind.key] for i in items], everything)
        update_secrets = params.get("update_secrets") or "on_create"
        create, update, delete, unknown = self.plan(
            items, existing, update_secrets, params.get("exclusive"), params.get("exclusive_keep") or ())
        changed = bool(create or update or delete)
        result = dict(
            changed=changed,
            created=[w[kind.key] for w in create],
            updated=[w[kind.key] for w, _h in update],
            deleted=list(delete),
            unverifiable=unknown,
        )
        if want_diff:
            touched = result["created"] + result["updated"] + result["deleted"]
            wanted = dict((w[kind.key], w) for w in create + [w for w, _h in update])
            result["diff"] = dict(
                before=dict((i, kind.for_diff(existing[i], wanted.get(i))) for i in touched if i in existing),
                after=dict((i, kind.for_diff(wanted[i])) for i in touched if i in wanted),
            )
        if changed and not self.check_mode:
            self.apply(create, update, delete, update_secrets)
        return result


def run_module(module, kind, list_name, single_fields):
    """Entry point shared by the three modules."""
    try:
        api = AirflowAPI(module.params)
        result = Reconciler(kind, api, module.check_mode).run(module.params, list_name, single_fields, module._diff)
    except DeclarationError as e:
        module.fail_json(msg=to_text(e))
    except AirflowAPIError as e:
        module.fail_json(msg=e.msg, status=e.status)
    module.exit_json(**result)
