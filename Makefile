# The front door: make, make deps, make check, make install.
PREFIX ?= /usr/local
DESTDIR ?=
BUILD := build
ASAN_BUILD := build-asan
FUZZ_BUILD := build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all deps build build-asan check demo install clean bench fuzz mutate

all: build

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --prefix=$(PREFIX)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false \
	  -Dbuildtype=debug -Dsimulator=disabled

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

# Everything: deps, both builds, then unit, simulator and integration tests,
# and the C suites again under ASan+UBSan. Ends with "N passed, N failed, N skipped".
check: deps
	$(MAKE) build build-asan
	tests/run.sh $(BUILD) $(ASAN_BUILD)

# A whole migration on the built-in vCenter simulator into libvirt's test
# driver, with a summary at the end. GUEST=debian migrates, converts and
# boots a real Debian guest (a few minutes).
demo: deps build
	GUEST=$(GUEST) scripts/demo.sh $(BUILD)

# Performance against nbdcopy, qemu-img and the synchronous baseline; writes
# docs/performance.md. Not part of make check.
bench: deps build
	bench/run.sh $(BUILD)

# libFuzzer harnesses (clang, ASan+UBSan), FUZZ_SECONDS each; not part of
# make check, which replays the seed corpus and every saved crasher instead.
$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
	  -Dbuildtype=debug -Dsimulator=disabled -Dtests=false

fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Mutation testing (tests/mutate/mutants.txt): each mutation of integrity-
# critical code is built in a scratch copy and must fail a named suite.
# Not part of make check. MUTANTS=id1,id2 runs a subset.
mutate: deps
	tests/mutate/run.sh

install: build
	install -D -m 0755 $(BUILD)/ablestack_v2k $(DESTDIR)$(PREFIX)/bin/ablestack_v2k
	install -d $(DESTDIR)$(PREFIX)/share/doc/ablestack-v2k
	install -m 0644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/ablestack-v2k/
	install -d $(DESTDIR)$(PREFIX)/share/doc/ablestack-v2k/examples
	install -m 0644 examples/* $(DESTDIR)$(PREFIX)/share/doc/ablestack-v2k/examples/

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
