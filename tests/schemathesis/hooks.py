"""Schemathesis hooks for fleet's ingest API (loaded with SCHEMATHESIS_HOOKS=hooks).

Some rules of a telemetry event cannot be stated in JSON Schema (OpenAPI 3.0), so they are given
here, and schema-valid examples are events ingest accepts:

- `vin`: 17 characters of the VIN alphabet whose 9th is the ISO 3779 check digit;
- `date-time`: an event time from 1970-01-01T00:00:00Z up to now (ingest refuses times more
  than 5 minutes in the future and before 1970);
- the old form's `position` items: z has the altitude range, narrower than x's and y's.
"""

import datetime

import schemathesis
from hypothesis import strategies as st

ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9))),
    **dict(zip("JKLMN", range(1, 6))),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10))),
}
WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]


def with_check_digit(vin: str) -> str:
    """`vin` with its 9th character replaced by the check digit of the others."""
    total = sum(VALUES[c] * w for c, w in zip(vin, WEIGHTS))
    digit = "X" if total % 11 == 10 else str(total % 11)
    return vin[:8] + digit + vin[9:]


assert with_check_digit("1M8GDM9AXKP042788") == "1M8GDM9AXKP042788"

schemathesis.openapi.format(
    "vin",
    st.text(alphabet=ALPHABET, min_size=17, max_size=17).map(with_check_digit),
)

EPOCH = datetime.datetime(1970, 1, 1)
schemathesis.openapi.format(
    "date-time",
    st.datetimes(min_value=EPOCH, max_value=datetime.datetime.now() - datetime.timedelta(minutes=1))
    .map(lambda t: t.replace(tzinfo=datetime.timezone.utc).isoformat()),
)

# Event times given as epoch seconds (`ts` of an event, `timestamp` of the old client's form)
# cannot carry a schema maximum: "at most 5 minutes past now" moves while a run lasts. A
# generated number past now is moved back to a minute ago. No check is weakened by it: the
# schema states no maximum, so no negative example depends on a large value there.
TIME_FIELDS = ("ts", "timestamp")


def _clamp(record):
    if isinstance(record, dict):
        limit = datetime.datetime.now(datetime.timezone.utc).timestamp() - 60
        for field in TIME_FIELDS:
            value = record.get(field)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > limit:
                record[field] = type(value)(limit)
    return record


# The old client's `position=x&position=y&position=z`: OpenAPI 3.0 cannot give each item its own
# range, so the items carry the widest one (x and y, +-1,000,000 m). A z inside that range but
# outside the altitude range (-500 m to 9,000 m) is schema-valid yet refused; it is moved to the
# nearest altitude bound. A z outside the items' range (a negative example) is left as it is.
HORIZONTAL = 1_000_000.0
ALTITUDE = (-500.0, 9_000.0)


def _clamp_altitude(record):
    position = record.get("position") if isinstance(record, dict) else None
    if isinstance(position, list) and len(position) == 3:
        z = position[2]
        if isinstance(z, (int, float)) and not isinstance(z, bool) and -HORIZONTAL <= z <= HORIZONTAL:
            position[2] = type(z)(min(max(z, ALTITUDE[0]), ALTITUDE[1]))
    return record


@schemathesis.hook
def map_body(ctx, body):
    if isinstance(body, list):
        return [_clamp(record) for record in body]
    return _clamp_altitude(_clamp(body))
