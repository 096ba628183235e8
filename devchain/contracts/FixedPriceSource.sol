// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title FixedPriceSource
/// @notice A price source that always answers the same price (8 decimals), as mainnet prices
///         some assets (GHO at 1 USD).
contract FixedPriceSource {
  int256 public immutable PRICE;
  uint8 public constant decimals = 8;
  string public description;

  constructor(int256 price, string memory description_) {
    PRICE = price;
    description = description_;
  }

  function latestAnswer() external view returns (int256) {
    return PRICE;
  }

  function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
    return (1, PRICE, block.timestamp, block.timestamp, 1);
  }
}
