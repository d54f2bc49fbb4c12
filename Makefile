# The two entry points a fresh machine needs: `make run` and `make test`.
BUILD_DIR ?= build
JOBS ?= 2
export CCACHE_SLOPPINESS := pch_defines,time_macros,include_file_mtime,include_file_ctime

.PHONY: run test build setup setup-test clean

run: setup build
	$(BUILD_DIR)/puddle serve $(ARGS)

test: setup-test build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 900 -j1

build: $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --test

clean:
	rm -rf $(BUILD_DIR)
