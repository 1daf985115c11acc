"""Hand-built pprof profiles for tests: stacks given as names, so every total is known before reading."""

from __future__ import annotations

import gzip

from fodc.pprof import profile_pb2 as pb


class Builder:
    """Builds a profile.proto message; each location may hold several (inlined) functions, innermost first."""

    def __init__(self, *types: tuple[str, str], default: str = "") -> None:
        self.message = pb.Profile()
        self.message.string_table.append("")
        self._strings: dict[str, int] = {"": 0}
        self._functions: dict[str, int] = {}
        self._locations: dict[tuple, int] = {}
        for type_name, unit in types:
            self.message.sample_type.add(type=self.s(type_name), unit=self.s(unit))
        if default:
            self.message.default_sample_type = self.s(default)

    def s(self, text: str) -> int:
        if text not in self._strings:
            self._strings[text] = len(self.message.string_table)
            self.message.string_table.append(text)
        return self._strings[text]

    def function(self, name: str) -> int:
        if name not in self._functions:
            self._functions[name] = len(self._functions) + 1
            self.message.function.add(id=self._functions[name], name=self.s(name), system_name=self.s(name),
                                      filename=self.s("main.go"))
        return self._functions[name]

    def mapping(self, mapping_id: int, filename: str, start: int, limit: int) -> None:
        self.message.mapping.add(id=mapping_id, memory_start=start, memory_limit=limit, filename=self.s(filename))

    def location(self, *inlined: str, mapping_id: int = 0, address: int = 0) -> int:
        """A location holding `inlined` functions (innermost first); none = an unsymbolized address."""
        key = (inlined, mapping_id, address)
        if key not in self._locations:
            loc_id = self._locations[key] = len(self._locations) + 1
            loc = self.message.location.add(id=loc_id, mapping_id=mapping_id, address=address)
            for line, name in enumerate(inlined):
                loc.line.add(function_id=self.function(name), line=10 + line)
        return self._locations[key]

    def sample(self, stack: list[int | str], *values: int) -> None:
        """`stack` leaf first: a name is a location of its own, an int an existing location id."""
        ids = [item if isinstance(item, int) else self.location(item) for item in stack]
        self.message.sample.add(location_id=ids, value=list(values))

    def raw(self) -> bytes:
        return self.message.SerializeToString()

    def gz(self) -> bytes:
        return gzip.compress(self.raw())
