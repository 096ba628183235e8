// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface IAnswerSource {
  function latestAnswer() external view returns (int256);
  function decimals() external view returns (uint8);
}

/// @title StableCapAdapter
/// @notice A stablecoin price source with an upper cap, the shape of mainnet's stablecoin
///         adapters: the underlying feed's answer, but never above `priceCap`.
contract StableCapAdapter {
  IAnswerSource public immutable ASSET_TO_USD_AGGREGATOR;
  uint8 public immutable DECIMALS;
  int256 public priceCap;
  string public description;

  constructor(address assetToUsdAggregator, int256 priceCap_, string memory description_) {
    ASSET_TO_USD_AGGREGATOR = IAnswerSource(assetToUsdAggregator);
    DECIMALS = IAnswerSource(assetToUsdAggregator).decimals();
    priceCap = priceCap_;
    description = description_;
  }

  function decimals() external view returns (uint8) {
    return DECIMALS;
  }

  function isCapped() public view returns (bool) {
    return ASSET_TO_USD_AGGREGATOR.latestAnswer() > priceCap;
  }

  function latestAnswer() external view returns (int256) {
    int256 answer = ASSET_TO_USD_AGGREGATOR.latestAnswer();
    return answer > priceCap ? priceCap : answer;
  }
}
