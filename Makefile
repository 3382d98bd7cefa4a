# Thin wrapper over CMake + ctest so the README's Quick start is two commands.
#   make demo   install missing Debian packages (as root), build, run the main command
#   make test   build and run the whole test suite (ctest)
#   make asan   the suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench  the speed figures of bench/README.md
BUILD ?= build
DEMO_IMAGE    = world-scene-test-2.png
DEMO_QUESTION = What color is the big shape?
JOBS  ?= $(shell nproc)
PKGS  = build-essential cmake pkg-config libopenblas-dev liblapacke-dev libpng-dev libcjson-dev \
        libstb-dev libpcre2-dev libutf8proc-dev python3-numpy python3-regex python3-torch python3-jinja2 python3-pil \
        libmicrohttpd-dev fonts-dejavu-core
PY    = /usr/bin/python3

.PHONY: all deps build demo test asan bench clean
all: build

deps:
	@missing=$$(for p in $(PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y $$missing; \
	  else echo "missing packages; run: sudo apt-get install -y $$missing"; exit 1; fi; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j$(JOBS)

# The main command: the shipped model (models/t2-tiny, docs/t2-tiny.md) answers a question about a
# world image in samples/.
demo: build
	$(BUILD)/t2 info --model models/t2-tiny
	$(BUILD)/t2 ask --model models/t2-tiny --image samples/$(DEMO_IMAGE) "$(DEMO_QUESTION)"

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

asan: deps
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DT2_SANITIZE=ON
	cmake --build $(BUILD)-asan -j$(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j$(JOBS)

bench: build
	bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD)-asan
