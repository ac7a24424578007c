package main

import _ "github.com/aws/aws-sdk-go-v2/config"

func main() {}
