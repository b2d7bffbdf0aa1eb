<?php
// Benchmark app: the PHP hello world of the upstreams suite (php-fpm behind fastcgi).
header("Content-Type: text/plain");
echo "Hello, World!";
