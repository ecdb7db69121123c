.PHONY: run test bench
run:
	./run.sh
test:
	./test.sh
bench:
	./bench/run.sh
