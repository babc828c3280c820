# paddock build. Plain GNU make: no generator to install, one file to read.
# `make` builds build/paddock; `make test` runs every suite (tests/run);
# `make asan` builds an ASan+UBSan variant into build-asan/.

CC      ?= cc
BUILD   ?= build
PKGS    := libseccomp yaml-0.1 jansson libarchive libcrypto libevent libevent_openssl libssl \
           sqlite3 libnftables
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wformat=2 -Wswitch-enum \
           -Wno-unused-parameter
ifeq ($(CI),true)
WARN    += -Werror
endif
HARDEN  := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
override CFLAGS += -std=gnu17 $(WARN) $(HARDEN) -D_GNU_SOURCE -Isrc \
                   $(shell pkg-config --cflags $(PKGS))
LDFLAGS ?=
override LDFLAGS += -pie -Wl,-z,relro,-z,now
LIBS    := $(shell pkg-config --libs $(PKGS))

# Every src/<dir>/*.c goes into libpaddock.a except the files holding a main():
# src/daemon/main.c (paddockd) and src/egress/main.c (paddock-egress).
LIB_SRC := $(sort $(filter-out src/daemon/main.c src/egress/main.c,\
             $(wildcard src/common/*.c src/spec/*.c src/sandbox/*.c src/image/*.c \
                        src/review/*.c src/daemon/*.c src/egress/*.c)))
CLI_SRC := $(sort $(wildcard src/cli/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

BINS := $(BUILD)/paddock $(BUILD)/paddock-run $(BUILD)/paddock-import \
        $(if $(wildcard src/daemon/main.c),$(BUILD)/paddockd) \
        $(if $(wildcard src/egress/main.c),$(BUILD)/paddock-egress)

all: $(BINS)

# --as-needed: each binary links only the libraries its own code uses.
# paddock is the lean front: the commands for named sandboxes (they talk to
# paddockd) in the binary itself, run/spec/image by becoming paddock-run,
# which has every command and the heavy libraries (libcrypto, libnftables).
CLI_LEAN_OBJ := $(BUILD)/src/cli/main-lean.o $(BUILD)/src/cli/cmd-sandbox.o \
                $(BUILD)/src/cli/spec-flags.o

$(BUILD)/paddock: $(CLI_LEAN_OBJ) $(BUILD)/libpaddock.a
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,--as-needed -o $@ $(CLI_LEAN_OBJ) $(BUILD)/libpaddock.a $(LIBS)

$(BUILD)/paddock-run: $(CLI_OBJ) $(BUILD)/libpaddock.a
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,--as-needed -o $@ $(CLI_OBJ) $(BUILD)/libpaddock.a $(LIBS)

$(BUILD)/src/cli/main-lean.o: src/cli/main.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DPADDOCK_LEAN -MMD -MP -c -o $@ $<

$(BUILD)/paddock-import: $(BUILD)/src/libexec/paddock-import.o $(BUILD)/libpaddock.a
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,--as-needed -o $@ $^ $(LIBS)

$(BUILD)/paddockd: $(BUILD)/src/daemon/main.o $(BUILD)/libpaddock.a
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,--as-needed -o $@ $^ $(LIBS)

$(BUILD)/paddock-egress: $(BUILD)/src/egress/main.o $(BUILD)/libpaddock.a
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,--as-needed -o $@ $^ $(LIBS)

$(BUILD)/libpaddock.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/libpaddock.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libpaddock.a $(LIBS) -lcmocka

unit: $(UNIT_BIN)

# Fuzzing. `make fuzz` builds the libFuzzer target build/fuzz/fuzz_spec (clang;
# run it as build/fuzz/fuzz_spec tests/fuzz/corpus/spec). The unit tests
# replay the corpus through the same target: build/tests/test_fuzz_replay.
FUZZ_CC    ?= clang
FUZZ_SRC   := $(sort $(wildcard src/common/*.c src/spec/*.c))
FUZZ_FLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=undefined -std=gnu17 -D_GNU_SOURCE -Isrc \
              $(shell pkg-config --cflags $(PKGS))

fuzz: $(BUILD)/fuzz/fuzz_spec

$(BUILD)/fuzz/fuzz_spec: tests/fuzz/fuzz_spec.c $(FUZZ_SRC) $(wildcard src/common/*.h src/spec/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_spec.c $(FUZZ_SRC) $(LIBS)

$(BUILD)/tests/test_fuzz_replay: tests/fuzz/replay.c tests/fuzz/fuzz_spec.c $(BUILD)/libpaddock.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ tests/fuzz/replay.c tests/fuzz/fuzz_spec.c \
		$(BUILD)/libpaddock.a $(LIBS) -lcmocka

unit: $(BUILD)/tests/test_fuzz_replay

# The gateway's parsers of untrusted input (paddock-egress): TLS ClientHello
# and HTTP request heads. build/fuzz/fuzz_sni tests/fuzz/corpus/sni, etc.
EGRESS_FUZZ := sni http framing
fuzz: $(EGRESS_FUZZ:%=$(BUILD)/fuzz/fuzz_%)

$(BUILD)/fuzz/fuzz_sni: tests/fuzz/fuzz_sni.c src/egress/sni.c src/egress/sni.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_sni.c src/egress/sni.c

$(BUILD)/fuzz/fuzz_http: tests/fuzz/fuzz_http.c src/egress/http.c src/egress/http.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_http.c src/egress/http.c

# the request framing walker of intercepted connections (secrets)
$(BUILD)/fuzz/fuzz_framing: tests/fuzz/fuzz_framing.c src/egress/http.c src/egress/secrets.c \
                            src/egress/policy.c src/common/err.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^) $(LIBS)

$(BUILD)/tests/test_fuzz_%_replay: tests/fuzz/replay.c tests/fuzz/fuzz_%.c $(BUILD)/libpaddock.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -DPADDOCK_REPLAY_CORPUS='"tests/fuzz/corpus/$*"' -o $@ \
		tests/fuzz/replay.c tests/fuzz/fuzz_$*.c $(BUILD)/libpaddock.a $(LIBS) -lcmocka

unit: $(EGRESS_FUZZ:%=$(BUILD)/tests/test_fuzz_%_replay)

test: all unit
	BUILD=$(BUILD) tests/run

asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	        LDFLAGS="-fsanitize=address,undefined" all unit

clean:
	rm -rf build build-asan

.PHONY: all unit test asan clean fuzz
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(BUILD)/src/cli/main-lean.d $(wildcard $(BUILD)/src/daemon/main.d $(BUILD)/src/egress/main.d)
